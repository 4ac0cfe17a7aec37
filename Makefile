# Two entry points for a fresh machine: `make demo` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test stack-up stack-down lint typecheck bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py psc/_speedups.c psc/_rdkafka.c psc/_failure_trap.c psc/_rdkafka_load.h psc/_tally.h memq/_speedups.c singer/_speedups.c
	@command -v java >/dev/null && command -v mvn >/dev/null && command -v cc >/dev/null || scripts/install-system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

demo: install
	compose/stack up
	$(BIN)/python demo.py

test: install
	scripts/check

stack-up: install
	compose/stack up

stack-down:
	compose/stack down

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

bench: install
	compose/stack up
	$(BIN)/python -m benchmarks run kafka-producers
