#!/usr/bin/env bash
# wheelhouse.sh [DIR]: every wheel the product needs (vosk included), for Python 3.11 on
# Linux x86_64, in DIR (default dist/wheelhouse): the product's own wheel, the reply
# reader compiled for it (minyi_reader), every dependency's, and setuptools/wheel (what
# the product's wheel is built with, for docker/Dockerfile's first stage). The offline
# bundle installs from it with `pip install --no-index --find-links`, and so does the
# image: pip cannot reach a package index inside an image build, nor on an air-gapped
# site.
#
# The wheels are chosen by Debian 12's own python3 (3.11.2), the interpreter they will
# run on, in a throwaway venv: environment markers depend on the exact version
# (redis needs async-timeout below Python 3.11.3, which a newer 3.11 would leave out).
# Its pip reaches PyPI, or the machine's wheel cache. The versions are constraints.txt's,
# the ones the test suite ran against. The product's old wheels are removed from OUT first.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-dist/wheelhouse}
TARGET_PYTHON=${MINYI_TARGET_PYTHON:-/usr/bin/python3}
"$TARGET_PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || {
  echo "wheelhouse: $TARGET_PYTHON is not Debian 12's Python 3.11 (apt-get install python3 python3-venv)" >&2
  exit 1
}
mkdir -p "$OUT"
# The throwaway venv lives outside OUT and the tree, and goes when the script ends: in
# OUT it left a whole third-party site-packages in the checkout (dist/wheelhouse).
# So do build/ and minyi_gateway.egg-info, which setuptools writes into the tree while it
# builds the product's wheel (copies of every module), unless they were there before.
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/minyi-wheelhouse.XXXXXX")
LEFT=("$SCRATCH")
for made in build minyi_gateway.egg-info; do [ -e "$made" ] || LEFT+=("$made"); done
trap 'rm -rf "${LEFT[@]}"' EXIT
VENV=$SCRATCH/venv
"$TARGET_PYTHON" -m venv "$VENV" || { echo "wheelhouse: $TARGET_PYTHON -m venv failed" >&2; exit 1; }
rm -f "$OUT"/minyi_gateway-*.whl "$OUT"/minyi_reader-*.whl
LOG=$OUT/.pip-wheel.log
"$VENV/bin/pip" wheel -q --disable-pip-version-check --wheel-dir "$OUT" -c constraints.txt \
  '.[asr]' setuptools wheel \
  >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; echo "wheelhouse: pip wheel failed, see $LOG" >&2; exit 1; }
ls "$OUT"/minyi_gateway-*.whl >/dev/null
# The reply reader compiled by mypyc for this python3 (scripts/compile_reader.py): mypy
# type-checks it against the product's dependencies, so the venv gets those, mypy and
# setuptools; gcc and python3-dev are scripts/setup.sh's. Its wheel, minyi_reader, holds
# the build as data files that pip puts under the installed venv's prefix.
LOG=$OUT/.compile-reader.log
{ "$VENV/bin/pip" install -q --disable-pip-version-check -c constraints.txt \
    --find-links "$OUT" "$(ls "$OUT"/minyi_gateway-*.whl)[asr]" mypy setuptools \
  && "$VENV/bin/python" scripts/compile_reader.py wheel "$OUT"; } \
  >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; echo "wheelhouse: compiling the reader failed, see $LOG" >&2; exit 1; }
ls "$OUT"/minyi_reader-*.whl >/dev/null
echo "wheelhouse: $(ls "$OUT"/*.whl | wc -l) wheels in $OUT"
