"""make_engine / describe_url: driver normalisation, secrets masked, SQLite pragmas."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.storage.engine import describe_url, make_engine, normalise_url


@pytest.mark.parametrize(
    "url",
    ["postgres://u:p@db:5432/md", "postgresql://u:p@db:5432/md", "postgresql+psycopg://u:p@db:5432/md"],
)
def test_postgres_urls_use_psycopg3(url):
    parsed = normalise_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.host, parsed.port, parsed.database, parsed.password) == ("db", 5432, "md", "p")


def test_other_drivers_and_databases_are_refused():
    with pytest.raises(InvalidInputError, match="psycopg"):
        normalise_url("postgresql+psycopg2://u:secret@db/md")
    with pytest.raises(InvalidInputError, match="only PostgreSQL and SQLite") as info:
        normalise_url("mysql://u:secret@db/md")
    assert "secret" not in str(info.value)
    with pytest.raises(InvalidInputError, match="not a database URL"):
        normalise_url("not a url")


def test_describe_url_masks_the_password():
    text = describe_url("postgresql://marketdata:s3cr%40t@db.example:5432/md")
    assert "s3cr" not in text and "***" in text and "db.example" in text
    assert describe_url("sqlite:///data/marketdata.db") == "sqlite:///data/marketdata.db"
    assert "hunter2" not in describe_url("weird://user:hunter2@host:bad:port/x")


def test_sqlite_engine_creates_folder_and_sets_pragmas(tmp_path):
    path = tmp_path / "a" / "b" / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert path.exists()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_engine_schema_sets_search_path(pg_engine):
    with pg_engine.connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    assert schema.startswith("t_")


def test_schema_name_is_validated():
    with pytest.raises(InvalidInputError, match="schema"):
        make_engine("postgresql://u@db/md", schema="x; DROP TABLE y")
