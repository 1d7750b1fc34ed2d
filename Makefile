# Two commands on a bare machine: `make serve` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test test-fast lint bench clean postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files re-run the install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints/dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c constraints/dev.txt
	touch $@ $(VENV)/.installed

serve: $(VENV)/.installed
	$(BIN)/xsell serve

# The console's browser tests drive Debian's Chromium (Playwright never downloads one).
CHROMIUM := /usr/bin/chromium

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get install -y chromium || (apt-get update && apt-get install -y chromium)'

# The PostgreSQL tests (tests/postgres_fixture.py) need a server: Debian's, installed if missing
# and started if stopped, with a role xsell_test that may create databases (a fresh one per
# test). XSELL_TEST_DATABASE=postgresql://... points them at another server instead.
postgres:
	@command -v pg_ctlcluster >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get install -y postgresql || (apt-get update && apt-get install -y postgresql)'
	@pg_isready -q -h 127.0.0.1 -p 5432 || $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -1) main start
	@pg_isready -q -h 127.0.0.1 -p 5432 -t 30
	@$(SUDO) su postgres -s /bin/sh -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'xsell_test'\" | grep -q 1 || psql -qc \"CREATE ROLE xsell_test LOGIN CREATEDB PASSWORD 'xsell_test'\""

# The whole suite, slow tests included (real gunicorn, browsers, fuzzing, long learning runs),
# in two processes (CI has two cores), a test file to a process: module fixtures start once.
# The lint runs first (8 s uncached): mypy on policies/ and logs/ was found red once nothing ran it.
test: $(VENV)/.installed-dev postgres | $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The inner loop: everything not marked slow, on every core, in under a minute (README, Development).
test-fast: $(VENV)/.installed-dev postgres
	$(BIN)/python -m pytest -m "not slow" -q -n auto

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy  # policies/ and logs/ ([tool.mypy] in pyproject.toml)

clean:
	rm -rf $(VENV) var .pytest_cache
