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
ASTERISK_HOME=${MINYI_ASTERISK_HOME:-/var/cache/minyi/asterisk}
SUITE=sid
NET_TIMEOUT=${MINYI_PROVISION_TIMEOUT:-600}
# asterisk pulls asterisk-modules, asterisk-config and asterisk-core-sounds-en by
# Depends; the GSM flavour of the English core sounds gives Record() its beep.
PACKAGES=(asterisk asterisk-modules asterisk-config asterisk-core-sounds-en-gsm)
ARCH=$(dpkg --print-architecture)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

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
    cat "$HERE/provision.sh" "$HERE/modules.conf"
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

# --- the mirror: the same host the machine's own Debian sources use ----------------------
mirror_url() {
  if [ -n "${MINYI_DEBIAN_MIRROR:-}" ]; then
    echo "$MINYI_DEBIAN_MIRROR"
    return
  fi
  local url=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    # deb822: the URIs line of the stanza serving the main archive (not -security).
    url=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$url" ] && [ -r /etc/apt/sources.list ]; then
    url=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  echo "${url:-http://deb.debian.org/debian}"
}

# --- private apt: nothing of the host's apt configuration or state is read or written ----
apt_setup() {
  MIRROR=$(mirror_url)
  mkdir -p "$APTDIR/etc/apt.conf.d" "$APTDIR/etc/sources.list.d" "$APTDIR/etc/preferences.d" \
    "$APTDIR/state/lists/partial" "$APTDIR/cache" "$APTDIR/log"
  : >"$APTDIR/state/status" # empty dpkg status: resolve the full closure
  echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" >"$APTDIR/etc/sources.list"
  # Keep a proxy the host's apt needs (if any): it is the only way out on some sites.
  local proxy
  proxy=$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p')
  cat >"$APTDIR/apt.conf" <<EOF
Dir::Etc "$APTDIR/etc";
Dir::Etc::main "/dev/null";
Dir::Etc::Parts "$APTDIR/etc/apt.conf.d";
Dir::Etc::sourcelist "$APTDIR/etc/sources.list";
Dir::Etc::sourceparts "$APTDIR/etc/sources.list.d";
Dir::Etc::preferences "$APTDIR/etc/preferences";
Dir::Etc::preferencesparts "$APTDIR/etc/preferences.d";
Dir::State "$APTDIR/state";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
Dir::Cache::archives "$DEBS";
Dir::Log "$APTDIR/log";
APT::Architecture "$ARCH";
APT::Architectures { "$ARCH"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::http::Timeout "30";
Acquire::https::Timeout "30";
Acquire::Retries "3";
// The package mirror this machine reaches may serve a frozen snapshot of sid whose
// Release file is past its Valid-Until; the signature is still checked.
Acquire::Check-Valid-Until "false";
EOF
  if [ -n "$proxy" ]; then echo "Acquire::http::Proxy \"$proxy\";" >>"$APTDIR/apt.conf"; fi
}

papt() { APT_CONFIG="$APTDIR/apt.conf" "$@"; }

# .deb file name apt gives a package version ("1:22.1-1" -> "1%3a22.1-1").
deb_name() { echo "${1}_${2//:/%3a}_${3}.deb"; }

manifest_complete() {
  [ -s "$DEBS/MANIFEST" ] || return 1
  local f
  while read -r f; do [ -f "$DEBS/$f" ] || return 1; done <"$DEBS/MANIFEST"
}

download() {
  apt_setup
  log "downloading package lists from $MIRROR $SUITE (timeout ${NET_TIMEOUT}s)"
  if ! timeout "$NET_TIMEOUT" env APT_CONFIG="$APTDIR/apt.conf" \
    apt-get -q update >"$LOGDIR/apt-update.log" 2>&1; then
    die "apt-get update of $MIRROR $SUITE failed or timed out; is the Debian mirror reachable? see $LOGDIR/apt-update.log"
  fi
  # apt-get update exits 0 on some fetch failures ("W: Failed to fetch"): check the list.
  if grep -qE '^(E:|W: Failed)' "$LOGDIR/apt-update.log"; then
    die "apt-get update of $MIRROR $SUITE reported errors, see $LOGDIR/apt-update.log"
  fi
  # The plan: every package of the closure, with the exact version sid offers today.
  if ! papt apt-get -q -s install "${PACKAGES[@]}" >"$LOGDIR/apt-plan.log" 2>&1; then
    die "apt cannot resolve ${PACKAGES[*]} in $SUITE today (sid may be mid-transition), see $LOGDIR/apt-plan.log"
  fi
  local plan=$LOGDIR/apt-plan.log
  grep -q '^Inst asterisk (' "$plan" || die "$SUITE has no installable asterisk, see $plan"
  log "downloading $(grep -c '^Inst ' "$plan") packages into $DEBS (timeout ${NET_TIMEOUT}s)"
  if ! timeout "$NET_TIMEOUT" env APT_CONFIG="$APTDIR/apt.conf" \
    apt-get -q -y --download-only install "${PACKAGES[@]}" >"$LOGDIR/apt-download.log" 2>&1; then
    die "downloading the Asterisk packages failed or timed out, see $LOGDIR/apt-download.log"
  fi
  # "Inst libc6 (2.41-12 Debian:unstable [amd64]) []" -> libc6_2.41-12_amd64.deb
  local name ver arch
  : >"$DEBS/MANIFEST.new"
  while read -r name ver arch; do
    deb_name "$name" "$ver" "$arch" >>"$DEBS/MANIFEST.new"
  done < <(sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\]).*$/\1 \2 \3/p' "$plan")
  mv "$DEBS/MANIFEST.new" "$DEBS/MANIFEST"
  [ "$(wc -l <"$DEBS/MANIFEST")" -eq "$(grep -c '^Inst ' "$plan")" ] ||
    die "could not read every package of the plan $plan (apt's output format changed?)"
  manifest_complete || die "apt reported success but some planned .debs are missing from $DEBS"
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

# --- the chroot ---------------------------------------------------------------------------
NEW=$ASTERISK_HOME/root.new
rm -rf "$NEW"
mkdir -p "$NEW"
log "unpacking $(wc -l <"$DEBS/MANIFEST") packages into $ROOT"
while read -r deb; do
  dpkg-deb -x "$DEBS/$deb" "$NEW" 2>>"$LOGDIR/unpack.log" || die "dpkg-deb -x $deb failed, see $LOGDIR/unpack.log"
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
  "$NEW/var/run" "$NEW/var/log/asterisk" "$NEW/var/spool/asterisk" "$NEW/var/cache/asterisk"
chmod 1777 "$NEW/tmp"
# Device nodes Asterisk and OpenSSL open: real nodes, so nothing has to be mounted and
# later unmounted (a bind mount left behind by a killed test run would pin the chroot).
mknod_dev() {
  mknod -m "$4" "$NEW/dev/$1" c "$2" "$3" 2>>"$LOGDIR/unpack.log" ||
    die "mknod $NEW/dev/$1 failed (a container without CAP_MKNOD?), see $LOGDIR/unpack.log"
}
mknod_dev null 1 3 666
mknod_dev zero 1 5 666
mknod_dev random 1 8 666
mknod_dev urandom 1 9 666

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
