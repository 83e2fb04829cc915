"""Database fixtures (owner: storage). Registered from conftest.py via `pytest_plugins`.

- `pg_engine`: an Engine on a fresh PostgreSQL schema `t_<random>` (search_path set), dropped afterwards.
  The server comes from MARKETDATA_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
- `sqlite_engine`: an Engine on a SQLite file under tmp_path.
- `db_engine`: both of the above in turn, migrated to head with `upgrade()`; `repo` wraps it in a
  MarketDataRepository. Tests that take `repo` run the same assertions on both databases.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateSchema, DropSchema

PG_URL = os.environ.get("MARKETDATA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    from marketdata_assets.storage.engine import make_engine

    admin = make_engine(PG_URL)
    schema = f"t_{secrets.token_hex(6)}"
    with admin.begin() as conn:
        conn.execute(CreateSchema(schema))
    engine = make_engine(PG_URL, schema=schema)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(DropSchema(schema, cascade=True))
        admin.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    from marketdata_assets.storage.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'marketdata.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request) -> Engine:
    """A migrated Engine, once on SQLite and once on PostgreSQL."""
    from marketdata_assets.storage.migrate import upgrade

    engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    upgrade(engine)
    return engine


@pytest.fixture
def repo(db_engine: Engine):
    from marketdata_assets.storage.repository import MarketDataRepository

    return MarketDataRepository(db_engine)


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())
