# Two commands on a fresh machine:
#   make demo   create .venv, install the core and every plugin, build the sample, run a training set
#   make test   the same set-up, then `make lint` and the whole test suite
#   make lint   ruff (lint and format check) and mypy, as the pre-commit hooks run them
#   make docs   the documentation site in site/ (offline, `mkdocs build --strict`; open site/index.html)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := plugins/tsm_writers plugins/tsm_dp1 plugins/tsm_dp2 plugins/tsm_dp02 plugins/tsm_web plugins/tsm_rail
# what `pip install -e` gets: the core and every plugin, with the test extras
EDITABLE := -e ".[test]" -e plugins/tsm_writers -e plugins/tsm_dp1 -e plugins/tsm_dp2 -e plugins/tsm_dp02 -e "plugins/tsm_web[test]" -e plugins/tsm_rail
STAMP  := $(VENV)/.installed
# LIneA's Photo-z Server client, for tests/test_pzserver.py: pzserver 0.3.7 declares pandas<3, which would
# downgrade pandas and break lsdb (nested-pandas needs pandas>=3); it runs on pandas 3, so it is installed
# without its declared dependencies, and its runtime dependencies are installed by name
PZCLIENT := pzserver==0.3.7
PZCLIENT_DEPS := requests tables-io Deprecated ipython matplotlib Jinja2

.PHONY: demo test lint install browser clean bench docs

$(STAMP): Makefile pyproject.toml $(foreach p,$(PLUGINS),$(p)/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(EDITABLE)
	$(BIN)/pip install --quiet $(PZCLIENT_DEPS)
	$(BIN)/pip install --quiet --no-deps $(PZCLIENT)
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser test (no tool downloads a browser of its own).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "chromium could not be installed: the browser test will be skipped"; \
		else echo "chromium not installed (needs root and apt-get): the browser test will be skipped"; fi; \
	fi

demo: $(STAMP)
	$(BIN)/tsm demo --out demo-output

# the same commands as .pre-commit-config.yaml
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint browser
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo-output site .pytest_cache .mypy_cache .ruff_cache
