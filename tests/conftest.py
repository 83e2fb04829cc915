"""Shared pytest fixtures. Keep one section per owner; add new fixtures in their own section."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# ----- storage (marketdata_assets.storage): pg_engine, sqlite_engine, db_engine, repo -----------------
pytest_plugins = ["tests.support.db", "tests.support.defs", "tests.support.datasets", "tests.support.sim",
                  "tests.support.ui"]

@pytest.fixture(autouse=True)
def no_ambient_dagster_home(monkeypatch):
    """`make test` exports DAGSTER_HOME (the Makefile's .dagster_home): a test that wants an instance makes
    its own, so no CLI call in a test records into the developer's instance."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


@pytest.fixture(autouse=True)
def own_state_dir(monkeypatch, tmp_path_factory):
    """Recorded IP bans (ratelimit.BanFile) go to a folder of the test's own, never the user's cache."""
    monkeypatch.setenv("MARKETDATA_STATE_DIR", str(tmp_path_factory.mktemp("state")))


# ----- simulator (marketdata_sim) -------------------------------------------------------------------
SIM_NOW = "2024-04-02T12:00:00Z"


@pytest.fixture
def sim() -> Iterator:
    """A fresh local Binance on loopback: clock frozen at 2024-04-02T12:00Z, default outage windows."""
    from marketdata_sim import SimServer

    with SimServer(now=SIM_NOW) as server:
        yield server


@pytest.fixture(scope="session")
def sim_session() -> Iterator:
    """One simulator for read-only tests (same settings as `sim`); do not change its clock or faults."""
    from marketdata_sim import SimServer

    with SimServer(now=SIM_NOW) as server:
        yield server
