# Asterisk 22 for Minyi Gateway (compose profile "asterisk"), from the Debian packages the
# tests run: Debian unstable's asterisk closure, downloaded by
# scripts/asterisk/provision.sh and copied into dist/asterisk by `make image-asterisk`,
# unpacked into an image of its own (no Debian 12 library is mixed in).
ARG BASE=debian:bookworm-slim
FROM ${BASE} AS root
COPY dist/asterisk/debs/ /debs/
COPY scripts/asterisk/make-root.sh scripts/asterisk/modules.conf /make/
RUN MINYI_NO_MKNOD=1 bash /make/make-root.sh /debs /asterisk-root

FROM scratch
COPY --from=root /asterisk-root/ /
# The configuration is mounted at /etc/asterisk: minyi asterisk render --out DIR
EXPOSE 5038/tcp 5060/udp 10000-20000/udp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/sbin/asterisk", "-f", "-n"]
