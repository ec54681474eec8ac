#!/usr/bin/env bash
# Set up everything Minyi Gateway needs on a fresh Debian machine: system packages
# with apt (we run as root on the target machines), a .venv with the Python packages.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-dev gcc redis-server espeak-ng sox libsox-fmt-all debian-archive-keyring golang-go)
# Redis Sentinel for the high-availability tests and bench/ha.py: a master, a replica
# and three sentinels on loopback (tests/servers.py).
APT_PACKAGES+=(redis-sentinel)
# Install tests: the image is built with podman and run with buildah on a base made by
# mmdebstrap; the offline bundle is installed in a network namespace (iproute2) and its
# units checked with systemd-analyze (systemd); the API's TLS certificate by openssl.
APT_PACKAGES+=(podman buildah mmdebstrap iproute2 systemd openssl)
# The desk and board browser test: Debian's headless Chromium and its WebDriver, driven
# by Selenium (requirements-test.txt) — nothing downloads a browser; a CJK font so the
# screenshots show the Chinese text.
APT_PACKAGES+=(chromium chromium-driver fonts-wqy-microhei)
# The agents' phone in the Asterisk tests: a SIP softphone the project did not write.
APT_PACKAGES+=(baresip-core)
# /metrics is checked by Prometheus' own `promtool check metrics` (Debian's prometheus).
APT_PACKAGES+=(prometheus)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Redis is started by the tests and the demo on a free loopback port; the packaged
# services on 6379 and 26379 are not needed (and must not be what a test talks to).

# Node.js for the tests' second SMS center, one the project did not write (the npm
# `smpp` package, tests/peers/smpp_smsc). A node already installed (e.g. from
# NodeSource, which bundles npm) is used as it is; otherwise Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: installing nodejs and npm"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install nodejs npm" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
PEER=tests/peers/smpp_smsc
if ! cmp -s "$PEER/package-lock.json" "$PEER/node_modules/.package-lock.json.installed" 2>/dev/null; then
  echo "setup: installing the npm SMS center's packages ($PEER)"
  (cd "$PEER" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$PEER/package-lock.json" "$PEER/node_modules/.package-lock.json.installed"
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "setup: Python 3.11 or newer is required ($("$PYTHON" --version))" >&2
  exit 1
}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
echo "setup: installing Python packages into .venv"
.venv/bin/pip install -q -c constraints.txt -e '.[dev,asr]' -r requirements-test.txt
echo "setup: done"
