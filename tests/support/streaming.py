"""Shared helpers for the streaming tests (no tests here): a fresh PostgreSQL schema or database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.migrate import upgrade

PG_URL = os.environ.get("MARKETDATA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin_conninfo(dbname: str = "postgres") -> str:
    url = sa.engine.make_url(PG_URL)
    return f"host={url.host or '127.0.0.1'} port={url.port or 5432} user={url.username or 'postgres'} dbname={dbname}"


def pg_available() -> bool:
    try:
        with psycopg.connect(_admin_conninfo(sa.engine.make_url(PG_URL).database), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


requires_pg = pytest.mark.skipif(not pg_available(), reason="PostgreSQL not reachable at MARKETDATA_TEST_PG")


@contextmanager
def pg_schema() -> Iterator[sa.Engine]:
    """A migrated, empty schema in the test database, dropped afterwards."""
    name = f"stream_{uuid.uuid4().hex[:10]}"
    dbname = sa.engine.make_url(PG_URL).database
    with psycopg.connect(_admin_conninfo(dbname), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    engine = make_engine(PG_URL, schema=name)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(_admin_conninfo(dbname), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@contextmanager
def pg_database() -> Iterator[tuple[str, str]]:
    """A migrated database of its own (so that it can be renamed away to simulate an outage).

    Yields (url, name); dropped afterwards whatever its name is then.
    """
    name = f"stream_db_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url, name
    finally:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            for candidate in (name, name + "_away"):
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                             (candidate,))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(candidate)))


def take_database_away(name: str) -> None:
    """Make the database unreachable: end its sessions and rename it (the server keeps running)."""
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(name), sql.Identifier(name + "_away")))


def bring_database_back(name: str) -> None:
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(name + "_away"), sql.Identifier(name)))


def async_test(function):
    """Run an async test function in a fresh event loop (the project does not use pytest-asyncio)."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return asyncio.run(asyncio.wait_for(function(*args, **kwargs), 120))

    return wrapper
