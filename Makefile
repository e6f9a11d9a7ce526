# The two set-up commands: `make run` and `make test`. Both create .venv on first use:
# `make run` installs the runtime dependencies only, `make test` adds the test extras.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test
PYTEST_ARGS ?=
# Test files run in parallel, one file per worker at a time (module fixtures are built once).
PYTEST_WORKERS ?= 2

.PHONY: run test test-all bench clean distclean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUNTIME): setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	@touch $(RUNTIME)

$(TESTING): setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test]'
	@touch $(RUNTIME) $(TESTING)

run: $(RUNTIME)
	$(PY) -m pipelines.full --flagfile=configs/digits_mlp.flags $(ARGS)

test: $(TESTING)
	$(PY) -m pytest -q -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-all: $(TESTING)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(TESTING)
	$(PY) -m benchmarks.hull_solver --json

# Runs only; `distclean` also removes the virtual environment.
clean:
	rm -rf runs

distclean: clean
	rm -rf $(VENV)
