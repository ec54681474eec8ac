# Minyi Gateway — `make demo` and `make test` are the whole quick start.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup reader test lint typecheck unit demo bench asterisk wheelhouse bundle image image-asterisk clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml requirements-test.txt constraints.txt scripts/setup.sh tests/peers/smpp_smsc/package-lock.json
	bash scripts/setup.sh
	touch $@

# The reply reader compiled by mypyc (sms.compiled) into .venv/minyi-reader;
# nothing to do when the build is current. Without it the reader runs as Python.
reader: setup
	$(PY) scripts/compile_reader.py build

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# pytest exits 5 when it collected no test; make treats any non-zero as failure, so an
# empty run can never pass silently.
test: lint typecheck reader
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: setup reader
	$(PY) -m pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

demo: setup reader
	$(PY) -m devstack.demo

# Asterisk 22 in a chroot for the callback tests (the test suite also does this itself).
asterisk:
	bash scripts/asterisk/provision.sh

# Every wheel the product needs (vosk included), for Debian 12's python3: what the bundle
# and the image install from, with no package index.
wheelhouse: setup
	bash scripts/wheelhouse.sh dist/wheelhouse

# The offline bundle: dist/minyi-<version>-bookworm-amd64.tar.gz (ASTERISK=1 adds Asterisk 22).
bundle: setup
	bash scripts/bundle.sh

# The gateway's image, with docker or podman, whichever is here (BASE=... another Debian 12).
ENGINE := $(shell command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 && echo docker || (command -v podman >/dev/null 2>&1 && echo podman))
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
BASE ?= debian:bookworm-slim
# podman keeps HEALTHCHECK only in the docker image format; chroot isolation runs the
# build steps where crun cannot (as root; PODMAN_ISOLATION= for podman's default)
PODMAN_ISOLATION ?= chroot
ENGINE_FLAGS = $(if $(filter podman,$(ENGINE)),--format docker $(if $(PODMAN_ISOLATION),--isolation $(PODMAN_ISOLATION)),)
image: wheelhouse
	@test -n "$(ENGINE)" || { echo "make image: neither docker nor podman is here" >&2; exit 1; }
	$(ENGINE) build $(ENGINE_FLAGS) --build-arg BASE=$(BASE) -f docker/Dockerfile -t localhost/minyi-gateway:$(VERSION) .

# Asterisk 22 for the compose profile "asterisk": the tests' packages in an image.
image-asterisk:
	@test -n "$(ENGINE)" || { echo "make image-asterisk: neither docker nor podman is here" >&2; exit 1; }
	bash scripts/asterisk/provision.sh
	rm -rf dist/asterisk && mkdir -p dist/asterisk/debs
	while read -r deb; do cp "$${MINYI_ASTERISK_HOME:-/var/cache/minyi/asterisk}/debs/$$deb" dist/asterisk/debs/; done < "$${MINYI_ASTERISK_HOME:-/var/cache/minyi/asterisk}/debs/MANIFEST"
	cp "$${MINYI_ASTERISK_HOME:-/var/cache/minyi/asterisk}/debs/MANIFEST" dist/asterisk/debs/
	$(ENGINE) build $(ENGINE_FLAGS) --build-arg BASE=$(BASE) -f docker/asterisk.Dockerfile -t localhost/minyi-asterisk:$(VERSION) .

bench: setup reader
	$(PY) bench/sms_throughput.py

clean:
	rm -rf $(VENV) var dist build minyi_gateway.egg-info .mypy_cache .ruff_cache .pytest_cache
