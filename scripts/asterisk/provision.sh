#!/usr/bin/env bash
# Provision a real Asterisk 22 for the tests and the demo, with no internet but the
# Debian package mirror.
#
# Debian 12 has no Asterisk; Debian unstable (sid) has 22.x. We must not add sid to the
# host's apt sources (that would offer sid upgrades to the whole machine), so apt runs
# here with a private configuration (its own sources.list, state, cache and an EMPTY
# dpkg status, so the whole dependency closure down to libc6 is resolved), downloads the
# .debs into $MINYI_ASTERISK_HOME/debs, and `dpkg-deb -x` unpacks them into a chroot at
# $MINYI_ASTERISK_HOME/root. Nothing is installed on the host.
#
# Idempotent and reusable: a completed provision leaves a stamp and is reused; the .debs
# are kept (sid changes under us: a rerun with no network re-extracts from them), and
# $MINYI_ASTERISK_HOME/VERSION records which Asterisk we got and when.
#
# Environment:
#   MINYI_ASTERISK_HOME      cache + chroot location (default /var/cache/minyi/asterisk)
#   MINYI_ASTERISK_REFRESH=1 download again from sid even if .debs are cached
#   MINYI_DEBIAN_MIRROR      mirror URL (default: the host's Debian mirror)
#   MINYI_PROVISION_TIMEOUT  seconds allowed for each network step (default 600)
#
# Exit status 0 when the chroot is ready; otherwise 1 with one "provision: ERROR:" line
# saying what failed and where its log is.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/apt-private.sh
. "$HERE/../lib/apt-private.sh"
ASTERISK_HOME=${MINYI_ASTERISK_HOME:-/var/cache/minyi/asterisk}
SUITE=sid
NET_TIMEOUT=${MINYI_PROVISION_TIMEOUT:-600}
# asterisk pulls asterisk-modules, asterisk-config and asterisk-core-sounds-en by
# Depends; the GSM flavour of the English core sounds gives Record() its beep.
PACKAGES=(asterisk asterisk-modules asterisk-config asterisk-core-sounds-en-gsm)
ARCH=$(dpkg --print-architecture)

log() { echo "provision: $*"; }
die() {
  echo "provision: ERROR: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (it builds a chroot with device nodes and runs chroot)"
for tool in apt-get dpkg-deb chroot flock timeout sha256sum mknod; do
  command -v "$tool" >/dev/null || die "missing host tool: $tool"
done
[ -r "$KEYRING" ] || die "missing $KEYRING (apt-get install debian-archive-keyring)"

mkdir -p "$ASTERISK_HOME"
ASTERISK_HOME=$(cd "$ASTERISK_HOME" && pwd)
ROOT=$ASTERISK_HOME/root
DEBS=$ASTERISK_HOME/debs
APTDIR=$ASTERISK_HOME/apt
LOGDIR=$ASTERISK_HOME/log
mkdir -p "$DEBS/partial" "$APTDIR" "$LOGDIR"

# One provisioner at a time (parallel test sessions on the same machine share the cache).
exec 9>"$ASTERISK_HOME/.lock"
flock -w 1800 9 || die "another provision.sh has held $ASTERISK_HOME/.lock for 30 minutes"

# The stamp covers everything that shapes the chroot, so editing this script, the module
# list or the package list re-provisions (from the cached .debs when possible).
STAMP_KEY=$(
  {
    cat "$HERE/provision.sh" "$HERE/make-root.sh" "$HERE/modules.conf"
    echo "${PACKAGES[*]} $ARCH"
  } | sha256sum | cut -d' ' -f1
)
STAMP=$ROOT/.minyi-provisioned

voices() {
  bash "$HERE/make_voices.sh" "$ASTERISK_HOME/voices" "$ROOT/usr/share/asterisk/sounds/minyi" \
    >"$LOGDIR/voices.log" 2>&1 || die "making the test voices failed, see $LOGDIR/voices.log"
}

if [ "${MINYI_ASTERISK_REFRESH:-0}" != 1 ] && [ -f "$STAMP" ] &&
  [ "$(cat "$STAMP")" = "$STAMP_KEY" ] && [ -f "$ASTERISK_HOME/VERSION" ]; then
  voices
  log "reusing $ROOT ($(sed -n 's/^asterisk=//p' "$ASTERISK_HOME/VERSION"))"
  exit 0
fi

# --- the closure from sid, with apt's private configuration (scripts/lib/apt-private.sh) --
download() {
  MIRROR=$(mirror_url)
  apt_setup "deb [signed-by=$KEYRING] $MIRROR $SUITE main"
  download_closure "Asterisk ($MIRROR $SUITE)" "${PACKAGES[@]}"
  local plan=$LOGDIR/apt-plan.log
  grep -q '^Inst asterisk (' "$plan" || die "$SUITE has no installable asterisk, see $plan"
  {
    echo "asterisk=$(sed -n 's/^Inst asterisk (\([^ ]*\) .*/\1/p' "$plan")"
    echo "downloaded=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "mirror=$MIRROR"
    echo "suite=$SUITE"
    echo "packages=$(wc -l <"$DEBS/MANIFEST")"
  } >"$DEBS/VERSION"
}

if [ "${MINYI_ASTERISK_REFRESH:-0}" = 1 ] || ! manifest_complete || [ ! -f "$DEBS/VERSION" ]; then
  download
else
  log "reusing the downloaded packages in $DEBS ($(sed -n 's/^asterisk=//p' "$DEBS/VERSION"))"
fi

# --- the chroot: the closure unpacked (scripts/asterisk/make-root.sh, also the installer's)
NEW=$ASTERISK_HOME/root.new
log "unpacking $(wc -l <"$DEBS/MANIFEST") packages into $ROOT"
bash "$HERE/make-root.sh" "$DEBS" "$NEW" 2>>"$LOGDIR/unpack.log" >>"$LOGDIR/unpack.log" ||
  die "making the chroot failed: $(tail -n 1 "$LOGDIR/unpack.log"), see $LOGDIR/unpack.log"

chroot "$NEW" /usr/sbin/asterisk -V >"$LOGDIR/asterisk-V.log" 2>&1 ||
  die "the unpacked Asterisk does not run in the chroot, see $LOGDIR/asterisk-V.log"
log "$(cat "$LOGDIR/asterisk-V.log")"
grep -q '^Asterisk 22\.' "$LOGDIR/asterisk-V.log" ||
  log "WARNING: expected Asterisk 22.x, sid gave $(cat "$LOGDIR/asterisk-V.log")"

# Swap in the new tree. A running Asterisk from another session keeps its open files.
if [ -d "$ROOT" ]; then
  mv "$ROOT" "$ASTERISK_HOME/root.old.$$"
  rm -rf "$ASTERISK_HOME/root.old.$$"
fi
mv "$NEW" "$ROOT"

voices
{
  cat "$DEBS/VERSION"
  echo "provisioned=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$ASTERISK_HOME/VERSION"
echo "$STAMP_KEY" >"$STAMP"
log "ready: $ROOT ($(sed -n 's/^asterisk=//p' "$ASTERISK_HOME/VERSION"))"
