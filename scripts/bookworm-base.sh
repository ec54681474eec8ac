#!/usr/bin/env bash
# bookworm-base.sh [--podman]: a minimal Debian 12 root made from Debian's packages, no
# image registry involved (mmdebstrap --variant=minbase), kept as a tarball under
# /var/cache/minyi/images and reused. It stands for "a fresh bookworm machine" in the
# offline-bundle test and is the base image of the docker/ test build:
#   --podman   also import it as localhost/debian:bookworm (podman import), unless there
#
# Prints the tarball's path on its last line. MINYI_IMAGES overrides the cache folder;
# MINYI_BASE_REFRESH=1 makes it again (it is otherwise kept: its packages only need to
# be a bookworm of some day). MINYI_DEBIAN_MIRROR: the mirror (default: the host's).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/apt-private.sh
. "$HERE/lib/apt-private.sh"
log() { echo "bookworm-base: $*" >&2; }
die() {
  echo "bookworm-base: ERROR: $*" >&2
  exit 1
}
IMAGES=${MINYI_IMAGES:-/var/cache/minyi/images}
TAR=$IMAGES/bookworm-minbase.tar
IMAGE=localhost/debian:bookworm
mkdir -p "$IMAGES"
exec 8>"$IMAGES/.lock"
flock -w 900 8 || die "another bookworm-base.sh has held $IMAGES/.lock for 15 minutes"

if [ "${MINYI_BASE_REFRESH:-0}" = 1 ] || [ ! -s "$TAR" ]; then
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (apt-get install mmdebstrap)"
  MIRROR=$(mirror_url)
  SECURITY=${MIRROR%/debian}/debian-security
  log "making $TAR with mmdebstrap from $MIRROR (about a minute or two)"
  mmdebstrap --variant=minbase --quiet bookworm "$IMAGES/bookworm-minbase.new.tar" \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY bookworm-security main" >"$IMAGES/mmdebstrap.log" 2>&1 ||
    die "mmdebstrap failed, see $IMAGES/mmdebstrap.log"
  mv "$IMAGES/bookworm-minbase.new.tar" "$TAR"
  podman image rm -f "$IMAGE" >/dev/null 2>&1 || true # made from the old tarball
fi

if [ "${1:-}" = --podman ] && ! podman image exists "$IMAGE" 2>/dev/null; then
  command -v podman >/dev/null || die "podman is missing (apt-get install podman)"
  log "importing $TAR as $IMAGE"
  podman import "$TAR" "$IMAGE" >/dev/null || die "podman import $TAR failed"
fi
echo "$TAR"
