"""Several processes migrating one fresh store at once (a download, the sidecar, a webserver and a daemon
starting together) all succeed, on PostgreSQL and SQLite: the migrations are serialized."""

from __future__ import annotations

import secrets
import subprocess

import pytest
import sqlalchemy as sa

from tests.support.db import PG_URL
from tests.support.ui import BIN

PROCESSES = 4


def _race(database_url: str) -> list[subprocess.CompletedProcess]:
    env = {"PATH": str(BIN), "DATABASE_URL": database_url}
    procs = [subprocess.Popen([str(BIN / "marketdata"), "db", "upgrade"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(PROCESSES)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=180), *p.communicate()) for p in procs]


def _raced_to_one_head(database_url: str) -> None:
    """Four `marketdata db upgrade` at once all succeed and leave the store at the packaged head."""
    from marketdata_assets.storage.engine import make_engine
    from marketdata_assets.storage.migrate import current_revision, head_revision

    for done in _race(database_url):
        assert done.returncode == 0, done.stderr[-2000:]
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_sqlite_store_migrated_by_four_processes_at_once(tmp_path) -> None:
    _raced_to_one_head(f"sqlite:///{tmp_path / 'race' / 'md.db'}")


@pytest.mark.postgres
def test_postgres_store_migrated_by_four_processes_at_once() -> None:
    from marketdata_assets.storage.engine import make_engine

    name = f"md_race_{secrets.token_hex(4)}"
    admin = make_engine(PG_URL)
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        _raced_to_one_head(url)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        admin.dispose()
