"""Apply the store's Alembic migrations from code (`marketdata db upgrade`, the code location at start).

The migration scripts ship inside the package, so this works from a wheel without an alembic.ini.
Two processes migrating a fresh store at once (a download and the sidecar, a webserver and a daemon) are
serialized: a transaction-scoped advisory lock on PostgreSQL, a lock file beside a SQLite database; the
second waits (at most MIGRATION_LOCK_TIMEOUT_S), then finds the store at head and does nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.storage.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x6D64_6D69_6772  # "mdmigr": this project's advisory lock id on PostgreSQL
MIGRATION_LOCK_TIMEOUT_S = 120
# the newest revision shipped (tests/test_storage_migrations.py holds it equal to the scripts' head): a store
# already there is seen by one query, without importing Alembic (a tenth of every command's start-up)
HEAD_REVISION = "0010"

if TYPE_CHECKING:
    from alembic.config import Config


def load_all_tables() -> sa.MetaData:
    """Import every `storage.tables*` module so that the shared `metadata` holds all tables.

    Table modules register on `tables.metadata` when imported; autogenerate and the drift test need all
    of them, including modules added later (no list to keep up to date).
    """
    import marketdata_assets.storage as storage

    for module in pkgutil.iter_modules(storage.__path__):
        if module.name.startswith("tables"):
            importlib.import_module(f"marketdata_assets.storage.{module.name}")
    from marketdata_assets.storage.tables import metadata

    return metadata


def alembic_config() -> Config:
    """An Alembic Config pointing at the packaged migrations (no ini file)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> str | None:
    """Migrate the store to `revision` (default: the newest); returns the revision now applied.

    Running it again is a no-op. Takes an Engine or a database URL (normalised like `make_engine`).
    """
    owned = not isinstance(engine_or_url, Engine)
    engine = make_engine(engine_or_url) if owned else engine_or_url
    try:
        if revision in ("head", HEAD_REVISION) and _stamped_revision(engine) == HEAD_REVISION:
            return HEAD_REVISION
        from alembic import command

        config = alembic_config()
        with _sqlite_file_lock(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"),
                                   {"t": f"{MIGRATION_LOCK_TIMEOUT_S}s"})
                # a migration of a large table may take longer than one statement is normally allowed
                connection.execute(sa.text("SELECT set_config('statement_timeout', '0', true)"))
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        return current_revision(engine)
    finally:
        if owned:
            engine.dispose()


def _stamped_revision(engine: Engine) -> str | None:
    """alembic_version's row, read directly (None: no such table yet, or no row)."""
    version = sa.table("alembic_version", sa.column("version_num"))
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(sa.select(version.c.version_num)).scalars().all()
    return rows[0] if len(rows) == 1 else None


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock file beside a SQLite database file (nothing for other stores)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    from filelock import FileLock, Timeout

    path = f"{Path(database).expanduser()}.migrate.lock"
    try:
        with FileLock(path, timeout=MIGRATION_LOCK_TIMEOUT_S):
            yield
    except Timeout:
        raise TimeoutError(f"another process has been migrating the store for over {MIGRATION_LOCK_TIMEOUT_S} s "
                           f"(lock file {path})") from None


def known_revision(revision: str) -> str:
    """`revision` if the packaged migrations know it; InvalidInputError naming it otherwise."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError as exc:
        raise InvalidInputError(f"--revision {revision!r}: {exc}") from None
    return revision


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this package."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
