# Two commands on a bare machine: `make serve` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test test-fast lint bench clean

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

# The whole suite, slow tests included (real gunicorn, browsers, fuzzing, long learning runs).
test: $(VENV)/.installed-dev | $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The inner loop: everything not marked slow, in under a minute (README, Development).
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy  # policies/ and logs/ ([tool.mypy] in pyproject.toml)

clean:
	rm -rf $(VENV) var .pytest_cache
