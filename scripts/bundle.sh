#!/usr/bin/env bash
# bundle.sh: the offline install bundle, dist/minyi-<version>-bookworm-amd64.tar.gz, for a
# Debian 12 (bookworm) amd64 machine with no network (`make bundle`; ASTERISK=1 adds
# Asterisk 22). It holds:
#   wheels/          every Python wheel the product needs, vosk included (wheelhouse.sh)
#   debs/            redis-server, python3 and python3-venv with everything they need
#                    (their closure from bookworm; install.sh installs what is missing)
#   asterisk/        with ASTERISK=1: the Asterisk 22 closure from Debian unstable (the
#                    packages the tests run, scripts/asterisk/provision.sh) and the
#                    script that unpacks it into its own root, /opt/minyi/asterisk
#   install.sh, systemd/, redis/minyi.conf, minyi.example.toml, docs/, BUNDLE, SHA256SUMS
#
# Environment: OUT (default dist), ASTERISK=1, MINYI_BUNDLE_CACHE (the .deb cache,
# default /var/cache/minyi/bundle), MINYI_DEBIAN_MIRROR, MINYI_BUNDLE_BUILD (the build
# id; default the git commit), MINYI_WHEELHOUSE (a folder scripts/wheelhouse.sh already
# filled from this tree, e.g. `make wheelhouse`'s dist/wheelhouse: used as it is, not
# rebuilt). Prints the tarball's path on its last line.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=lib/apt-private.sh
. "$HERE/lib/apt-private.sh"
log() { echo "bundle: $*" >&2; }
die() {
  echo "bundle: ERROR: $*" >&2
  exit 1
}
cd "$REPO"
OUT=${OUT:-dist}
ARCH=amd64
SUITE=bookworm
[ "$(dpkg --print-architecture)" = "$ARCH" ] || die "bundles are made on $ARCH (the wheels are this machine's)"
[ "$(id -u)" -eq 0 ] || die "must run as root (apt's private download)"
VERSION=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
BUILD=${MINYI_BUNDLE_BUILD:-$(git rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)}
if [ -z "${MINYI_BUNDLE_BUILD:-}" ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  BUILD=$BUILD-dirty$(date -u +%Y%m%d%H%M%S)
fi
NAME=minyi-$VERSION-$SUITE-$ARCH
STAGE=$OUT/$NAME
NET_TIMEOUT=${MINYI_PROVISION_TIMEOUT:-600}
# Debian 12 machines have these, or get them from the bundle: the gateway's venv runs
# on the system python3 (3.11, as the wheels); redis-server is the one Redis it needs.
PACKAGES=(redis-server python3 python3-venv)

rm -rf "$STAGE"
mkdir -p "$STAGE"/{wheels,debs,systemd,redis,docs}

WHEELHOUSE=${MINYI_WHEELHOUSE:-}
if [ -n "$WHEELHOUSE" ]; then
  ls "$WHEELHOUSE"/minyi_gateway-"$VERSION"-*.whl >/dev/null 2>&1 ||
    die "MINYI_WHEELHOUSE=$WHEELHOUSE holds no minyi_gateway $VERSION wheel (scripts/wheelhouse.sh DIR makes them)"
  log "wheels from $WHEELHOUSE"
else
  log "wheels"
  WHEELHOUSE=$OUT/wheelhouse
  bash "$HERE/wheelhouse.sh" "$WHEELHOUSE" >&2
fi
cp "$WHEELHOUSE"/*.whl "$STAGE/wheels/"

log "the .debs of ${PACKAGES[*]} from $SUITE"
CACHE=${MINYI_BUNDLE_CACHE:-/var/cache/minyi/bundle}
APTDIR=$CACHE/apt
DEBS=$CACHE/debs
LOGDIR=$CACHE/log
mkdir -p "$APTDIR" "$DEBS" "$LOGDIR"
exec 9>"$CACHE/.lock"
flock -w 900 9 || die "another bundle.sh has held $CACHE/.lock for 15 minutes"
MIRROR=$(mirror_url)
apt_setup "deb [signed-by=$KEYRING] $MIRROR $SUITE main" \
  "deb [signed-by=$KEYRING] $MIRROR $SUITE-updates main" \
  "deb [signed-by=$KEYRING] ${MIRROR%/debian}/debian-security $SUITE-security main"
download_closure "the bundle ($MIRROR $SUITE)" "${PACKAGES[@]}"
while read -r deb; do cp "$DEBS/$deb" "$STAGE/debs/"; done <"$DEBS/MANIFEST"
cp "$DEBS/MANIFEST" "$STAGE/debs/MANIFEST"
exec 9>&-

ASTERISK_VERSION=none
if [ "${ASTERISK:-0}" = 1 ]; then
  log "Asterisk 22 (scripts/asterisk/provision.sh's packages)"
  bash "$HERE/asterisk/provision.sh" >&2 || die "provisioning Asterisk failed"
  AHOME=${MINYI_ASTERISK_HOME:-/var/cache/minyi/asterisk}
  mkdir -p "$STAGE/asterisk/debs"
  while read -r deb; do cp "$AHOME/debs/$deb" "$STAGE/asterisk/debs/"; done <"$AHOME/debs/MANIFEST"
  cp "$AHOME/debs/MANIFEST" "$AHOME/debs/VERSION" "$STAGE/asterisk/debs/"
  cp "$HERE/asterisk/make-root.sh" "$HERE/asterisk/modules.conf" "$STAGE/asterisk/"
  ASTERISK_VERSION=$(sed -n 's/^asterisk=//p' "$AHOME/debs/VERSION")
fi

cp "$REPO/packaging/install.sh" "$STAGE/install.sh"
chmod 0755 "$STAGE/install.sh"
cp "$REPO"/packaging/systemd/*.service "$STAGE/systemd/"
cp "$REPO/packaging/redis/minyi.conf" "$STAGE/redis/"
cp "$REPO/minyi.example.toml" "$STAGE/"
cp "$REPO"/docs/*.md "$STAGE/docs/"
cp "$REPO/dialplans/README.md" "$STAGE/docs/dialplans.md"
cat >"$STAGE/BUNDLE" <<INFO
version=$VERSION
build=$BUILD
made=$(date -u +%Y-%m-%dT%H:%M:%SZ)
suite=$SUITE
arch=$ARCH
python=3.11
asterisk=$ASTERISK_VERSION
INFO
(cd "$STAGE" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
tar -C "$OUT" -czf "$OUT/$NAME.tar.gz.new" "$NAME"
mv "$OUT/$NAME.tar.gz.new" "$OUT/$NAME.tar.gz"
log "$(du -h "$OUT/$NAME.tar.gz" | cut -f1) $NAME.tar.gz (build $BUILD, $(ls "$STAGE/wheels" | wc -l) wheels, $(wc -l <"$STAGE/debs/MANIFEST") debs, asterisk: $ASTERISK_VERSION)"
echo "$OUT/$NAME.tar.gz"
