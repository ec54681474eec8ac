# Minyi Gateway — `make demo` and `make test` are the whole quick start.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint typecheck unit demo bench asterisk clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml requirements-test.txt scripts/setup.sh tests/peers/smpp_smsc/package-lock.json
	bash scripts/setup.sh
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# pytest exits 5 when it collected no test; make treats any non-zero as failure, so an
# empty run can never pass silently.
test: lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

demo: setup
	$(PY) -m devstack.demo

# Asterisk 22 in a chroot for the callback tests (the test suite also does this itself).
asterisk:
	bash scripts/asterisk/provision.sh

bench: setup
	$(PY) bench/sms_throughput.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
