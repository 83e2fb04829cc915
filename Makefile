# The two commands of the README: `make run` and `make test`. Both set up .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup run demo sim test lint bench
SIM_PORT ?= 8765
HOST ?= 127.0.0.1
PORT ?= 3000

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# Dagster UI + the fast daemon (deploy/serve.py) on the embedded default: SQLite market data in
# data/marketdata.db, a persistent instance in .dagster_home. Against the real Binance.
run: setup
	mkdir -p $(DAGSTER_HOME) data
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/marketdata db upgrade
	$(BIN)/python deploy/serve.py --host $(HOST) --port $(PORT)

# `make run` against the local Binance (no network needed), every sensor and schedule on.
demo: setup
	mkdir -p $(DAGSTER_HOME) data
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/marketdata db upgrade
	MARKETDATA_AUTOMATION=all $(BIN)/python deploy/serve.py --host $(HOST) --port $(PORT) --sim-port $(SIM_PORT)

# The local Binance on port 8765 (REST + WebSocket + archive).
sim: setup
	$(BIN)/marketdata sim --port $(SIM_PORT)

lint: setup
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadgroup -q

bench: setup
	$(BIN)/python bench/bench_download.py
