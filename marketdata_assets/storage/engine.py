"""Engines for the market-data store: one place that knows driver names and SQLite pragmas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.redact import mask_credentials
from marketdata_assets.storage.hung_guard import attach, statement_timeout_s

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10  # libpq connect_timeout; `?connect_timeout=N` in DATABASE_URL overrides it
# Server-side bound on one statement (a lock wait included): a database stuck behind a lock ends the
# command with an error instead of a hang. `?options=-c statement_timeout=...` in DATABASE_URL overrides it;
# migrations lift it for their own transaction.
PG_STATEMENT_TIMEOUT_S = 300


def normalise_url(url: str | URL) -> URL:
    """`postgres://` and `postgresql://` become `postgresql+psycopg://` (psycopg 3: COPY); others as given."""
    if isinstance(url, str):
        text = url.strip()
        if text.startswith("postgres://"):
            text = "postgresql://" + text.removeprefix("postgres://")
        try:
            parsed = make_url(text)
        except (ArgumentError, ValueError):
            raise InvalidInputError(f"DATABASE_URL {describe_url(text)!r} is not a database URL") from None
    else:
        parsed = url
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise InvalidInputError(
            f"DATABASE_URL {describe_url(parsed)!r}: the store needs the psycopg (3) driver, "
            "use postgresql:// or postgresql+psycopg://"
        )
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise InvalidInputError(
            f"DATABASE_URL {describe_url(parsed)!r}: only PostgreSQL and SQLite are supported"
        )
    return parsed


def describe_url(url: str | URL) -> str:
    """The URL with its password masked, for logs and error messages."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return mask_credentials(url)  # not parseable (e.g. no scheme): still no password shown


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers never block the writer; NORMAL is durable in WAL mode except for the last commit on
    # power loss. busy_timeout: concurrent writers (loader + sidecar) wait instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
    cursor.close()


def make_engine(url: str | URL, *, schema: str | None = None, **kwargs: Any) -> Engine:
    """An Engine for the store.

    PostgreSQL: psycopg 3, pool_pre_ping, a connect timeout (PG_CONNECT_TIMEOUT_S) and a statement timeout
    (PG_STATEMENT_TIMEOUT_S), with a client-side bound a little above it (hung_guard: a frozen server);
    `schema` sets the search_path (tests use a fresh schema each).
    SQLite: creates the file's folder and sets WAL, synchronous=NORMAL, foreign keys and a busy timeout.
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInputError(f"DATABASE_URL: cannot create the SQLite folder {folder}: "
                                        f"{exc.strerror or exc}") from None
        engine = sa.create_engine(parsed, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    if "connect_timeout" not in parsed.query:  # a host that accepts and never answers must not hang a command
        connect_args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    options = [] if "options" in parsed.query else [f"-c statement_timeout={PG_STATEMENT_TIMEOUT_S}s"]
    if schema is not None:
        if not schema.replace("_", "").isalnum():
            raise InvalidInputError(f"invalid schema name {schema!r}: letters, digits and _ only")
        options.append(f"-c search_path={schema}")
    if options:
        connect_args["options"] = " ".join([connect_args.get("options", ""), *options]).strip()
    kwargs["connect_args"] = connect_args
    engine = sa.create_engine(parsed, **kwargs)
    given = parsed.query.get("options")
    timeout = PG_STATEMENT_TIMEOUT_S if not given else statement_timeout_s(
        " ".join(given) if isinstance(given, tuple) else given)
    if timeout:  # a server that applies a statement timeout and still does not answer is frozen
        attach(engine, timeout)
    return engine
