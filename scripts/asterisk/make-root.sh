#!/usr/bin/env bash
# make-root.sh DEBS_DIR NEW_ROOT: unpack an Asterisk closure (the .debs listed in
# DEBS_DIR/MANIFEST, downloaded by provision.sh from Debian unstable) into a directory
# that Asterisk runs in with chroot (the tests) or systemd's RootDirectory= (the
# offline bundle's minyi-asterisk.service). Nothing is installed on the host: Asterisk
# 22 and its sid libraries never mix with the host's.
#
# Used by scripts/asterisk/provision.sh and by the bundle's install.sh (which ships this
# file and modules.conf beside it). NEW_ROOT is replaced. MINYI_NO_MKNOD=1 skips the
# device nodes (a container build, where the runtime provides /dev).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEBS=$1
NEW=$2
die() {
  echo "make-root: ERROR: $*" >&2
  exit 1
}
[ -s "$DEBS/MANIFEST" ] || die "no $DEBS/MANIFEST"

rm -rf "$NEW"
mkdir -p "$NEW"
while read -r deb; do
  dpkg-deb -x "$DEBS/$deb" "$NEW" || die "dpkg-deb -x $deb failed"
done <"$DEBS/MANIFEST"

# sid is merged-/usr; the top-level links normally come from base-files' maintainer
# scripts, which `dpkg -x` does not run. The ELF interpreter is /lib64/ld-linux-*.so.
for d in bin sbin lib lib64; do
  if [ -d "$NEW/$d" ] && [ ! -L "$NEW/$d" ]; then
    mkdir -p "$NEW/usr/$d"
    cp -a "$NEW/$d/." "$NEW/usr/$d/"
    rm -rf "${NEW:?}/$d"
  fi
  [ -e "$NEW/$d" ] || { mkdir -p "$NEW/usr/$d" && ln -s "usr/$d" "$NEW/$d"; }
done

mkdir -p "$NEW/dev" "$NEW/proc" "$NEW/tmp" "$NEW/run" "$NEW/var/lib/minyi" \
  "$NEW/var/run" "$NEW/var/log/asterisk" "$NEW/var/spool/asterisk" "$NEW/var/cache/asterisk" \
  "$NEW/var/lib/asterisk"
chmod 1777 "$NEW/tmp"
if [ "${MINYI_NO_MKNOD:-0}" != 1 ]; then
  # Device nodes Asterisk and OpenSSL open: real nodes, so nothing has to be mounted and
  # later unmounted (a bind mount left behind by a killed test run would pin the chroot).
  mknod_dev() {
    mknod -m "$4" "$NEW/dev/$1" c "$2" "$3" ||
      die "mknod $NEW/dev/$1 failed (a container without CAP_MKNOD? set MINYI_NO_MKNOD=1)"
  }
  mknod_dev null 1 3 666
  mknod_dev zero 1 5 666
  mknod_dev random 1 8 666
  mknod_dev urandom 1 9 666
fi

# Asterisk and glibc look users and groups up even when running as root.
cat >"$NEW/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
asterisk:x:999:999:Asterisk PBX:/var/lib/asterisk:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$NEW/etc/group" <<'EOF'
root:x:0:
audio:x:29:asterisk
asterisk:x:999:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$NEW/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$NEW/etc/hosts"
: >"$NEW/etc/resolv.conf"
ln -sf /usr/share/zoneinfo/Etc/UTC "$NEW/etc/localtime"
# Debian's postinst points sounds/en at the installed voice with update-alternatives.
if [ -d "$NEW/usr/share/asterisk/sounds/en_US_f_Allison" ] && [ ! -e "$NEW/usr/share/asterisk/sounds/en" ]; then
  ln -s en_US_f_Allison "$NEW/usr/share/asterisk/sounds/en"
fi
install -m 0644 "$HERE/modules.conf" "$NEW/etc/asterisk/modules.conf"
echo "make-root: $(wc -l <"$DEBS/MANIFEST") packages unpacked into $NEW"
