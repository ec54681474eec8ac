#!/usr/bin/env bash
# wheelhouse.sh [DIR]: every wheel the product needs (vosk included), for Python 3.11 on
# Linux x86_64, in DIR (default dist/wheelhouse): the product's own wheel, every
# dependency's, and setuptools/wheel (what the product's wheel is built with, for
# docker/Dockerfile's first stage). The offline bundle installs from it with
# `pip install --no-index --find-links`, and so does the image: pip cannot reach a
# package index inside an image build, nor on an air-gapped site.
#
# Built with the project's .venv pip (scripts/setup.sh), which reaches PyPI or the
# machine's wheel cache. The product's old wheels are removed from DIR first.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-dist/wheelhouse}
PIP=.venv/bin/pip
[ -x "$PIP" ] || { echo "wheelhouse: $PIP is missing: run make setup" >&2; exit 1; }
# The target is Debian 12's python3 (3.11): the binary wheels must be for 3.11.
.venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "wheelhouse: .venv is not Python 3.11; its wheels would not fit Debian 12's python3" >&2
  exit 1
}
mkdir -p "$OUT"
rm -f "$OUT"/minyi_gateway-*.whl
LOG=$OUT/.pip-wheel.log
"$PIP" wheel -q --disable-pip-version-check --wheel-dir "$OUT" '.[asr]' setuptools wheel \
  >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; echo "wheelhouse: pip wheel failed, see $LOG" >&2; exit 1; }
ls "$OUT"/minyi_gateway-*.whl >/dev/null
echo "wheelhouse: $(ls "$OUT"/*.whl | wc -l) wheels in $OUT"
