"""Alembic migrations shipped in the package: upgrade from nothing, twice, on both databases."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from marketdata_assets.storage import migrate
from marketdata_assets.storage.tables import metadata as kline_metadata
from tests.support.db import table_names

ROOT = Path(__file__).resolve().parents[1]


def test_upgrade_creates_the_tables_and_a_second_run_is_a_no_op(db_engine):
    # db_engine is already migrated once by the fixture
    head = migrate.head_revision()
    assert migrate.current_revision(db_engine) == head
    tables = table_names(db_engine)
    assert {"kline_data", "partition_ledger", "alembic_version"} <= tables
    assert migrate.upgrade(db_engine) == head
    assert table_names(db_engine) == tables
    with db_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_migrated_schema_matches_the_tables_module(db_engine):
    inspector = sa.inspect(db_engine)
    for table in (kline_metadata.tables["kline_data"], kline_metadata.tables["partition_ledger"]):
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.columns.keys())
    key = inspector.get_pk_constraint("kline_data")
    assert (key["name"], key["constrained_columns"]) == ("pk_kline_data", ["symbol", "interval", "open_time"])
    assert inspector.get_indexes("kline_data") == []  # the key serves every reader (migration 0009)


def test_migrations_and_table_definitions_agree(db_engine):
    """Alembic autogenerate finds nothing to do: storage/tables*.py and the revisions describe one schema."""
    metadata = migrate.load_all_tables()

    with db_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_from_url_and_step_by_step(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'store.db'}"
    assert migrate.upgrade(url, "0001") == "0001"
    from marketdata_assets.storage.engine import make_engine

    engine = make_engine(url)
    try:
        assert migrate.current_revision(engine) == "0001"
        assert migrate.upgrade(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_current_revision_of_an_empty_database(sqlite_engine):
    assert migrate.current_revision(sqlite_engine) is None


def test_migration_files_are_package_data():
    """Every file under storage/migrations matches a package-data pattern, so wheels carry them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["marketdata_assets.storage"]
    package = ROOT / "marketdata_assets" / "storage"
    files = [
        p.relative_to(package).as_posix()
        for p in (package / "migrations").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert "migrations/env.py" in files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []


def test_the_shipped_head_constant_is_the_scripts_head():
    """upgrade() skips Alembic for a store already at HEAD_REVISION: a new migration must move it."""
    assert migrate.head_revision() == migrate.HEAD_REVISION


@pytest.mark.parametrize("engine_fixture", ["sqlite_engine", pytest.param("pg_engine", marks=pytest.mark.postgres)])
def test_0009_keeps_every_stored_bar_and_keys_the_table_by_symbol_interval_open_time(engine_fixture, request):
    """A store with bars at 0008 (surrogate id, extra index) comes out of 0009 with the same rows, keyed
    by the natural key alone, and a repeated bar is still refused."""
    from datetime import UTC, datetime, timedelta

    from marketdata_assets.storage.tables import kline_data

    engine = request.getfixturevalue(engine_fixture)
    migrate.upgrade(engine, "0008")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [{"symbol": "BTCUSDT", "interval": "1m", "open_time": start + timedelta(minutes=i), "open": "1.10",
             "high": "2.20", "low": "0.50", "close": "1.00", "volume": "3.000", "quote_volume": "4.0",
             "close_time": start + timedelta(minutes=i, seconds=59.999), "trades_count": i,
             "taker_buy_volume": "1.5", "taker_buy_quote_volume": "2.5", "source": "archive", "ingested_at": start}
            for i in range(5)]
    with engine.begin() as conn:
        conn.execute(kline_data.insert(), rows)
        before = conn.execute(sa.select(kline_data).order_by(kline_data.c.open_time)).all()
    assert migrate.upgrade(engine) == migrate.HEAD_REVISION
    with engine.begin() as conn:
        assert conn.execute(sa.select(kline_data).order_by(kline_data.c.open_time)).all() == before
    key = sa.inspect(engine).get_pk_constraint("kline_data")
    assert key["constrained_columns"] == ["symbol", "interval", "open_time"]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(kline_data.insert(), rows[:1])


@pytest.mark.parametrize("engine_fixture", ["sqlite_engine", pytest.param("pg_engine", marks=pytest.mark.postgres)])
def test_0010_spells_the_enumerated_checks_as_equalities_keeping_rows_and_refusals(engine_fixture, request):
    """The CHECKs come out of 0010 as OR'd equalities (SQLite builds a table per row for an IN list), every
    stored row stays, a value outside the list is still refused, and 0009 comes back on downgrade."""
    from datetime import UTC, datetime

    from marketdata_assets.storage.tables import kline_data

    engine = request.getfixturevalue(engine_fixture)
    migrate.upgrade(engine, "0009")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    row = {"symbol": "BTCUSDT", "interval": "1m", "open_time": start, "open": "1.10", "high": "2.20", "low": "0.50",
           "close": "1.00", "volume": "3.000", "quote_volume": "4.0", "close_time": start, "trades_count": 7,
           "taker_buy_volume": "1.5", "taker_buy_quote_volume": "2.5", "source": "archive", "ingested_at": start}
    with engine.begin() as conn:
        conn.execute(kline_data.insert(), [row])
    assert migrate.upgrade(engine) == migrate.HEAD_REVISION
    checks = {c["name"]: c["sqltext"] for c in sa.inspect(engine).get_check_constraints("kline_data")}
    assert " OR " in checks["ck_kline_data_source"].upper() and "'stream'" in checks["ck_kline_data_source"]
    with engine.begin() as conn:
        assert [str(v) for v in conn.execute(sa.select(kline_data.c.open)).scalars()] == ["1.10"]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(kline_data.insert(), [row | {"open_time": datetime(2024, 1, 2, tzinfo=UTC), "source": "bogus"}])
    _downgrade(engine, "0009")
    checks = {c["name"]: c["sqltext"] for c in sa.inspect(engine).get_check_constraints("kline_data")}
    assert " OR " not in checks["ck_kline_data_source"].upper()  # the IN list (PostgreSQL: = ANY) again


def _downgrade(engine, revision: str) -> None:
    from alembic import command

    config = migrate.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
