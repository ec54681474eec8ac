# Redis for Minyi Gateway, from Debian's redis-server on the same base as the gateway.
# The settings the gateway needs (docs/operations.md): the append-only file synced every
# second, and no eviction. Its data lives in the volume at /var/lib/redis.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY packaging/redis/minyi.conf /etc/redis/minyi.conf
USER redis
VOLUME ["/var/lib/redis"]
EXPOSE 6379
CMD ["redis-server", "/etc/redis/minyi.conf", "--dir", "/var/lib/redis", "--bind", "0.0.0.0", "--protected-mode", "no"]
