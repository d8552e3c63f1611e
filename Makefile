# The two commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/breakoutd run --sim --watchlists watchlists

test: $(STAMP) browser
	$(BIN)/ruff check breakoutd tests
	$(BIN)/mypy breakoutd/core breakoutd/config
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The report's page is tested in headless Chromium (Debian's package): installed
# when it is missing and this user may (root with apt-get); else that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } \
	  || echo "chromium is not installed: the report's browser test will skip"

lint: $(STAMP)
	$(BIN)/ruff check breakoutd tests
	$(BIN)/mypy breakoutd

bench: $(STAMP)
	$(BIN)/python tests/bench/bench_tape.py
	$(BIN)/python tests/bench/bench_backtest.py
	$(BIN)/python tests/bench/bench_jobs.py
	$(BIN)/python tests/bench/bench_sim.py
	$(BIN)/python tests/bench/bench_latency.py
	$(BIN)/python tests/bench/bench_reload.py
	$(BIN)/python tests/bench/bench_background.py
	$(BIN)/python tests/bench/bench_check.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
