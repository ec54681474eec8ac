#!/usr/bin/env bash
# install.sh — install or upgrade Minyi Gateway from this bundle on Debian 12 (bookworm),
# amd64, with no network. Run as root from the unpacked bundle:
#     tar xzf minyi-<version>-bookworm-amd64.tar.gz && minyi-<version>-bookworm-amd64/install.sh
#
# What it does (every step is skipped when already done, so it can be run again):
#   1. installs the bundle's .debs that are missing (redis-server, python3, python3-venv
#      and what they need) with apt, offline: nothing is downloaded;
#   2. creates the system user and group "minyi";
#   3. creates the release /opt/minyi/releases/<version>-<build> (a venv with the
#      product and its wheels) and points /opt/minyi/current at it; the release before
#      stays, /opt/minyi/previous points at it (rollback: point current back, restart);
#   4. writes /etc/minyi/minyi.toml from the example only if there is none (never
#      overwrites it; the new example is always put beside it as minyi.example.toml), and
#      /etc/minyi/minyi.env (secrets) likewise;
#   5. creates /var/lib/minyi (data, ASR models) for the minyi user;
#   6. Redis: /etc/redis/minyi.conf (AOF everysec, noeviction), included from
#      redis.conf when this run installed redis-server (otherwise it says how);
#   7. installs the systemd units (minyi.service, minyi@.service) and, with systemd
#      running, reloads it and restarts the gateway units that were running (upgrade);
#   8. with Asterisk in the bundle (made with ASTERISK=1): unpacks it into its own root,
#      /opt/minyi/asterisk, and installs minyi-asterisk.service (MINYI_ASTERISK=0 skips).
# An upgrade is the same command with the newer bundle: config and data are kept.
#
# Environment: MINYI_ASTERISK=0|1 (default: 1 when the bundle has Asterisk),
# MINYI_ANY_OS=1 (do not insist on bookworm).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=/opt/minyi
ETC=/etc/minyi
DATA=/var/lib/minyi
RECORDINGS=/var/spool/asterisk/monitor/minyi
UNITDIR=/etc/systemd/system

log() { echo "install: $*"; }
die() {
  echo "install: ERROR: $*" >&2
  exit 1
}
info() { sed -n "s/^$1=//p" "$HERE/BUNDLE"; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -r "$HERE/BUNDLE" ] || die "$HERE/BUNDLE is missing: run install.sh from the unpacked bundle"
VERSION=$(info version)
BUILD=$(info build)
if [ "${MINYI_ANY_OS:-0}" != 1 ]; then
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ "$codename" = "$(info suite)" ] ||
    die "this bundle is for Debian $(info suite), this machine is ${codename:-unknown} (MINYI_ANY_OS=1 to try anyway)"
fi
[ "$(dpkg --print-architecture)" = "$(info arch)" ] || die "this bundle is for $(info arch)"
(cd "$HERE" && sha256sum --quiet -c SHA256SUMS) || die "the bundle is damaged (SHA256SUMS do not match)"
log "Minyi Gateway $VERSION (build $BUILD)"

# --- 1. system packages, offline --------------------------------------------------------
installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
missing=()
redis_new=0
while read -r deb; do
  pkg=$(dpkg-deb -f "$HERE/debs/$deb" Package)
  if ! installed "$pkg"; then
    missing+=("$HERE/debs/$deb")
    [ "$pkg" != redis-server ] || redis_new=1
  fi
done <"$HERE/debs/MANIFEST"
if ((${#missing[@]})); then
  log "installing ${#missing[@]} packages from the bundle"
  # apt orders them (pre-dependencies first) and checks them against what is installed;
  # with no sources and no package lists it cannot reach for anything else. (Not
  # --no-download: it makes apt look for the local files in its download cache.)
  lists=$(mktemp -d)
  mkdir -p "$lists/lists/partial" "$lists/sources.list.d"
  : >"$lists/sources.list"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dir::Etc::SourceList="$lists/sources.list" -o Dir::Etc::SourceParts="$lists/sources.list.d" \
    -o Dir::State::Lists="$lists/lists" \
    "${missing[@]}" >"$lists/apt.log" 2>&1 || {
    tail -n 20 "$lists/apt.log" >&2
    die "apt could not install the bundle's packages (log above)"
  }
  rm -rf "$lists"
fi
command -v python3 >/dev/null || die "python3 is still missing"

# --- 2. the user --------------------------------------------------------------------------
getent group minyi >/dev/null || groupadd --system minyi
if ! getent passwd minyi >/dev/null; then
  useradd --system --gid minyi --home-dir "$DATA" --no-create-home \
    --shell /usr/sbin/nologin --comment "Minyi Gateway" minyi
  log "created the system user minyi"
fi
# Asterisk writes the recordings the gateway reads and, after retention_days, deletes.
if getent group asterisk >/dev/null; then usermod -a -G asterisk minyi; fi

# --- 3. the release -----------------------------------------------------------------------
RELEASE_NAME=$VERSION-$BUILD
RELEASE=$PREFIX/releases/$RELEASE_NAME
mkdir -p "$PREFIX/releases"
if [ ! -f "$RELEASE/.complete" ]; then
  log "creating $RELEASE"
  rm -rf "$RELEASE"
  python3 -m venv "$RELEASE"
  # Only the bundle's wheels: no index, and none of this machine's pip settings (its
  # config files nor PIP_* variables: a site's PIP_INDEX_URL must not be tried).
  # minyi-reader is the reply reader compiled for this python3 (sms.compiled).
  for var in $(compgen -e | grep '^PIP_' || true); do unset "$var"; done
  PIP_CONFIG_FILE=/dev/null "$RELEASE/bin/pip" install -q --no-index --disable-pip-version-check \
    --find-links "$HERE/wheels" "minyi-gateway[asr]==$VERSION" "minyi-reader==$VERSION" ||
    die "pip could not install the product from $HERE/wheels"
  mkdir -p "$RELEASE/share/doc/minyi"
  cp "$HERE"/docs/*.md "$HERE/minyi.example.toml" "$HERE/BUNDLE" "$RELEASE/share/doc/minyi/"
  "$RELEASE/bin/minyi" --help >/dev/null || die "the installed minyi does not run"
  touch "$RELEASE/.complete"
fi
current=$(readlink "$PREFIX/current" 2>/dev/null || true)
if [ "$current" != "releases/$RELEASE_NAME" ]; then
  if [ -n "$current" ]; then ln -sfn "$current" "$PREFIX/previous"; fi
  ln -sfn "releases/$RELEASE_NAME" "$PREFIX/current.new"
  mv -T "$PREFIX/current.new" "$PREFIX/current"
  log "$PREFIX/current -> releases/$RELEASE_NAME${current:+ (was $current)}"
fi

# --- 4. configuration, never overwritten --------------------------------------------------
install -d -m 0750 -o root -g minyi "$ETC" "$ETC/instances"
install -m 0640 -o root -g minyi "$HERE/minyi.example.toml" "$ETC/minyi.example.toml"
if [ ! -e "$ETC/minyi.toml" ]; then
  install -m 0640 -o root -g minyi "$HERE/minyi.example.toml" "$ETC/minyi.toml"
  log "wrote $ETC/minyi.toml from the example: edit it, then: minyi config check --config $ETC/minyi.toml"
fi
if [ ! -e "$ETC/minyi.env" ]; then
  install -m 0640 -o root -g minyi /dev/null "$ETC/minyi.env"
  cat >"$ETC/minyi.env" <<'ENV'
# Secrets for the gateway, read by its systemd units (EnvironmentFile=). One VAR=value
# a line; docs/configuration.md lists them. For example:
# MINYI_API_TOKEN_CORE=...
# MINYI_SMPP_PASSWORD_CMCC_1=...
# MINYI_WEBHOOK_SECRET_CORE=whsec_...
ENV
fi

# --- 5. data ------------------------------------------------------------------------------
install -d -m 0750 -o minyi -g minyi "$DATA" "$DATA/models"

# --- 6. Redis -----------------------------------------------------------------------------
if [ -d /etc/redis ]; then
  install -m 0644 "$HERE/redis/minyi.conf" /etc/redis/minyi.conf
  if grep -q '^include /etc/redis/minyi.conf' /etc/redis/redis.conf 2>/dev/null; then
    :
  elif [ "$redis_new" = 1 ]; then
    printf '\n# Minyi Gateway: persistence and no eviction (docs/operations.md)\ninclude /etc/redis/minyi.conf\n' \
      >>/etc/redis/redis.conf
    log "Redis: /etc/redis/redis.conf includes /etc/redis/minyi.conf (AOF everysec, noeviction)"
  else
    log "Redis was already installed: add 'include /etc/redis/minyi.conf' to its redis.conf, or its lines (docs/operations.md)"
  fi
fi

# --- 8. Asterisk (before the units: its unit is installed only with it) ------------------
asterisk=${MINYI_ASTERISK:-1}
[ -d "$HERE/asterisk" ] || asterisk=0
if [ "$asterisk" = 1 ]; then
  stamp=$(sha256sum "$HERE/asterisk/debs/MANIFEST" | cut -d' ' -f1)
  if [ "$(cat "$PREFIX/asterisk/.minyi-root" 2>/dev/null)" != "$stamp" ]; then
    log "unpacking Asterisk ($(sed -n 's/^asterisk=//p' "$HERE/asterisk/debs/VERSION")) into $PREFIX/asterisk"
    bash "$HERE/asterisk/make-root.sh" "$HERE/asterisk/debs" "$PREFIX/asterisk.new" >/dev/null
    chroot "$PREFIX/asterisk.new" /usr/sbin/asterisk -V >/dev/null || die "the unpacked Asterisk does not run"
    echo "$stamp" >"$PREFIX/asterisk.new/.minyi-root"
    rm -rf "$PREFIX/asterisk.old"
    if [ -d "$PREFIX/asterisk" ]; then mv "$PREFIX/asterisk" "$PREFIX/asterisk.old"; fi
    mv "$PREFIX/asterisk.new" "$PREFIX/asterisk"
    rm -rf "$PREFIX/asterisk.old"
  fi
  # Its configuration lives outside the root (kept across upgrades): rendered there by
  # `minyi asterisk render --out /etc/minyi/asterisk` (dialplans/README.md).
  install -d -m 0750 -o root -g minyi "$ETC/asterisk"
  install -d -m 0750 "$DATA/asterisk" "$DATA/asterisk/lib" "$DATA/asterisk/log"
  install -d -m 2770 -o root -g minyi "$RECORDINGS"
  mkdir -p "$PREFIX/asterisk$RECORDINGS" # where the unit binds it
  for conf in modules.conf; do
    [ -e "$ETC/asterisk/$conf" ] || install -m 0640 -o root -g minyi "$HERE/asterisk/$conf" "$ETC/asterisk/$conf"
  done
  if [ ! -e "$ETC/asterisk/asterisk.conf" ]; then
    cat >"$ETC/asterisk/asterisk.conf" <<'CONF'
; Asterisk for Minyi Gateway (minyi-asterisk.service): paths inside its root.
[directories]
astetcdir => /etc/asterisk
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => /var/lib/asterisk
astdbdir => /var/lib/asterisk
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => /var/spool/asterisk
astrundir => /var/run/asterisk
astlogdir => /var/log/asterisk
astsbindir => /usr/sbin
[options]
; keep RTP flowing while a channel only plays or records: every recording leg has frames
transmit_silence = yes
CONF
    chgrp minyi "$ETC/asterisk/asterisk.conf"
    chmod 0640 "$ETC/asterisk/asterisk.conf"
  fi
fi

# --- 7. systemd ---------------------------------------------------------------------------
units=(minyi.service minyi@.service)
[ "$asterisk" != 1 ] || units+=(minyi-asterisk.service)
for unit in "${units[@]}"; do
  install -m 0644 "$HERE/systemd/$unit" "$UNITDIR/$unit"
done
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$redis_new" = 1 ]; then systemctl restart redis-server.service; fi
  # An upgrade: the gateway processes that ran go on with the new release.
  systemctl try-restart minyi.service 'minyi@*.service' || true
fi

log "done: $PREFIX/current/bin/minyi ($VERSION, build $BUILD)"
if [ "$current" = "" ]; then
  log "next: edit $ETC/minyi.toml (secrets in $ETC/minyi.env), check it with"
  log "  $PREFIX/current/bin/minyi config check --config $ETC/minyi.toml"
  log "then: systemctl enable --now minyi"
fi
