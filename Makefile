# The two commands of the README: `make run` and `make test`. Both set up .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup run demo sim test lint bench
SIM_PORT ?= 8765
HOST ?= 127.0.0.1
PORT ?= 3000
SIM_URL := http://127.0.0.1:$(SIM_PORT)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# Dagster UI + daemon on the embedded default (SQLite market data, persistent instance in .dagster_home).
run: setup
	mkdir -p $(DAGSTER_HOME) data
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/marketdata db upgrade
	$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

# `make run` against the local Binance instead of the real one (no network needed).
demo: setup
	mkdir -p $(DAGSTER_HOME) data
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/marketdata sim --port $(SIM_PORT) & SIM_PID=$$!; trap "kill $$SIM_PID" EXIT INT TERM; \
	export BINANCE_FAPI_URL=$(SIM_URL) BINANCE_ARCHIVE_URL=$(SIM_URL) \
	       BINANCE_ARCHIVE_LISTING_URL=$(SIM_URL)/data.binance.vision BINANCE_WS_URL=ws://127.0.0.1:$(SIM_PORT); \
	$(BIN)/marketdata db upgrade && $(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

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
