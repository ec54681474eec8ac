# Sourced by scripts that download a package closure from Debian without touching the
# host's apt: scripts/asterisk/provision.sh (Asterisk 22 from sid, for the tests) and
# scripts/bundle.sh (redis-server and Python for an offline install on bookworm).
#
# apt runs with a private configuration: its own sources.list, state, cache, and an
# EMPTY dpkg status, so that the whole dependency closure down to libc6 is resolved
# (the .debs are unpacked into a chroot, or installed on a machine we do not know).
#
# The caller defines log() and die() and sets: APTDIR (apt's private tree), DEBS (where
# the .debs go), LOGDIR, NET_TIMEOUT (seconds per network step).

KEYRING=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

# The Debian mirror: MINYI_DEBIAN_MIRROR, else the one the machine's own sources use.
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

# apt_setup "deb [signed-by=...] URL SUITE main" ...: the private apt configuration.
apt_setup() {
  mkdir -p "$APTDIR/etc/apt.conf.d" "$APTDIR/etc/sources.list.d" "$APTDIR/etc/preferences.d" \
    "$APTDIR/state/lists/partial" "$APTDIR/cache" "$APTDIR/log" "$DEBS/partial"
  : >"$APTDIR/state/status" # empty dpkg status: resolve the full closure
  printf '%s\n' "$@" >"$APTDIR/etc/sources.list"
  local arch
  arch=$(dpkg --print-architecture)
  # Keep a proxy the host's apt needs (if any): it is the only way out on some sites.
  local proxy
  proxy=$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p')
  cat >"$APTDIR/apt.conf" <<CONF
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
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::http::Timeout "30";
Acquire::https::Timeout "30";
Acquire::Retries "3";
// The package mirror this machine reaches may serve a frozen snapshot whose Release
// file is past its Valid-Until; the signature is still checked.
Acquire::Check-Valid-Until "false";
CONF
  if [ -n "$proxy" ]; then echo "Acquire::http::Proxy \"$proxy\";" >>"$APTDIR/apt.conf"; fi
}

# .deb file name apt gives a package version ("1:22.1-1" -> "1%3a22.1-1").
deb_name() { echo "${1}_${2//:/%3a}_${3}.deb"; }

# Every file of $DEBS/MANIFEST is there.
manifest_complete() {
  [ -s "$DEBS/MANIFEST" ] || return 1
  local f
  while read -r f; do [ -f "$DEBS/$f" ] || return 1; done <"$DEBS/MANIFEST"
}

# download_closure WHAT PACKAGE...: the packages and everything they need, as .debs in
# $DEBS, listed (file names, in apt's install order) in $DEBS/MANIFEST. The plan is
# left in $LOGDIR/apt-plan.log ("Inst NAME (VERSION ...)" lines).
download_closure() {
  local what=$1
  shift
  log "downloading package lists for $what (timeout ${NET_TIMEOUT}s)"
  if ! timeout "$NET_TIMEOUT" env APT_CONFIG="$APTDIR/apt.conf" \
    apt-get -q update >"$LOGDIR/apt-update.log" 2>&1; then
    die "apt-get update for $what failed or timed out; is the Debian mirror reachable? see $LOGDIR/apt-update.log"
  fi
  # apt-get update exits 0 on some fetch failures ("W: Failed to fetch"): check the list.
  if grep -qE '^(E:|W: Failed)' "$LOGDIR/apt-update.log"; then
    die "apt-get update for $what reported errors, see $LOGDIR/apt-update.log"
  fi
  # The plan: every package of the closure, with the exact version offered today.
  local plan=$LOGDIR/apt-plan.log
  if ! APT_CONFIG="$APTDIR/apt.conf" apt-get -q -s install "$@" >"$plan" 2>&1; then
    die "apt cannot resolve $* for $what today, see $plan"
  fi
  log "downloading $(grep -c '^Inst ' "$plan") packages into $DEBS (timeout ${NET_TIMEOUT}s)"
  if ! timeout "$NET_TIMEOUT" env APT_CONFIG="$APTDIR/apt.conf" \
    apt-get -q -y --download-only install "$@" >"$LOGDIR/apt-download.log" 2>&1; then
    die "downloading the packages for $what failed or timed out, see $LOGDIR/apt-download.log"
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
}
