# The two commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/breakoutd run --sim --watchlists watchlists

test: $(STAMP)
	$(BIN)/ruff check breakoutd tests
	$(BIN)/mypy breakoutd/core breakoutd/config
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check breakoutd tests
	$(BIN)/mypy breakoutd

bench: $(STAMP)
	$(BIN)/python tests/bench/bench_tape.py
	$(BIN)/python tests/bench/bench_backtest.py
	$(BIN)/python tests/bench/bench_sim.py
	$(BIN)/python tests/bench/bench_latency.py
	$(BIN)/python tests/bench/bench_reload.py
	$(BIN)/python tests/bench/bench_background.py
	$(BIN)/python tests/bench/bench_check.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
