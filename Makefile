# Two commands on a fresh machine: `make run` and `make test`. Both bootstrap .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= runs/demo

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/volguard demo --out $(OUT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# Peer libraries (lbriv, pyvolr, py_vollib_vectorized + py_lets_be_rational 1.0.1, QuantLib) live in
# their own venv, from the pinned `bench` extra, so the unit-test venv never imports them.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) $(STAMP)
	$(BENCH_VENV)/bin/python benchmarks/bench_implied_vol.py
	$(BENCH_VENV)/bin/python benchmarks/bench_greeks.py
	$(BENCH_VENV)/bin/python benchmarks/bench_ingest.py
	$(BENCH_VENV)/bin/python benchmarks/bench_heston.py
	$(BENCH_VENV)/bin/python benchmarks/bench_heston_calibration.py
	$(BENCH_VENV)/bin/python benchmarks/bench_svi.py
	$(BENCH_VENV)/bin/python benchmarks/bench_simulator.py
	$(BIN)/python benchmarks/bench_guard.py
	$(BIN)/python benchmarks/bench_study.py
	$(BIN)/python benchmarks/bench_learned.py
	$(BIN)/python benchmarks/bench_hedging.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs .pytest_cache .mypy_cache .ruff_cache
