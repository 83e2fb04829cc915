"""A client-side bound on one PostgreSQL call: a frozen server (stopped, or a host that keeps the socket and
answers nothing) never fires its own statement_timeout, and TCP sees nothing wrong, so a command would wait
forever. One watcher thread per process cuts off any call that has run longer than its engine's limit (a
little more than the statement timeout, so a live server always answers first) by shutting its socket
down: the call ends with an OperationalError ("the database cannot be used", exit 1) instead of a hang.

Calls through SQLAlchemy are tracked by engine events, commits, rollbacks and pre-pings by the engine's
dialect; raw COPY blocks say so with `guarded(driver)`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

_LIMITS: weakref.WeakKeyDictionary[sa.Engine, float] = weakref.WeakKeyDictionary()
_TIMEOUT = re.compile(r"statement_timeout\s*=\s*(\d+)\s*(ms|s|min)?", re.IGNORECASE)


def hung_limit_s(statement_timeout_s: float) -> float:
    """How long a call may run before the client gives up on the server (10 % and 5 s over its timeout)."""
    return statement_timeout_s * 1.1 + 5.0


def statement_timeout_s(options: str) -> float | None:
    """The statement_timeout in a libpq `options` string (`-c statement_timeout=2s`), in seconds."""
    found = _TIMEOUT.search(options or "")
    if found is None:
        return None
    value, unit = int(found.group(1)), (found.group(2) or "ms").lower()
    return value / 1000 if unit == "ms" else value * 60 if unit == "min" else float(value)


def shutdown_socket(conn: Any) -> None:
    """Shut a psycopg connection's socket down from another thread; the call blocked on it sees EOF."""
    with contextlib.suppress(OSError, Exception):
        duplicate = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)  # acts on the socket itself, not just this descriptor
        finally:
            duplicate.close()


class _Watcher:
    def __init__(self) -> None:
        self._busy: dict[int, tuple[float, float, Any]] = {}  # id(driver) -> (since, limit, driver)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def begin(self, driver: Any, limit_s: float) -> None:
        with self._lock:
            self._busy[id(driver)] = (time.monotonic(), limit_s, driver)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="db-hung-guard", daemon=True)
                self._thread.start()

    def end(self, driver: Any) -> None:
        with self._lock:
            self._busy.pop(id(driver), None)

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            now = time.monotonic()
            with self._lock:
                hung = [(k, v) for k, v in self._busy.items() if now - v[0] > v[1]]
                for key, _ in hung:
                    del self._busy[key]
            for _key, (since, _limit, driver) in hung:
                log.warning("a database call has not returned for %.0f s (a frozen server?): cutting it off",
                            now - since)
                shutdown_socket(driver)


_WATCHER = _Watcher()


def attach(engine: sa.Engine, statement_timeout: float) -> None:
    """Guard every statement this engine runs (PostgreSQL)."""
    limit = _LIMITS[engine] = hung_limit_s(statement_timeout)

    def before(conn, _cursor, _statement, _parameters, _context, _executemany) -> None:
        _WATCHER.begin(conn.connection.driver_connection, limit)

    def after(conn, *_args) -> None:
        _WATCHER.end(conn.connection.driver_connection)

    def failed(context) -> None:
        connection = context.connection
        if connection is not None and connection.connection is not None:
            _WATCHER.end(connection.connection.driver_connection)

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    sa.event.listen(engine, "handle_error", failed)
    # COMMIT, ROLLBACK and the pool's pre-ping are no cursor executions: no event sees them, and a frozen
    # server holds them as long as any statement (a load whose next step is a commit waited forever)
    dialect = engine.dialect
    for name in ("do_commit", "do_rollback", "do_ping"):
        setattr(dialect, name, _guarded_call(getattr(dialect, name), limit))


def _guarded_call(call: Any, limit_s: float) -> Any:
    """A dialect call on one DBAPI connection (or the pool's proxy of it) under the watcher."""

    def guarded_call(connection: Any) -> Any:
        driver = getattr(connection, "driver_connection", connection)
        _WATCHER.begin(driver, limit_s)
        try:
            return call(connection)
        finally:
            _WATCHER.end(driver)

    return guarded_call


@contextlib.contextmanager
def guarded(conn: sa.Connection) -> Iterator[Any]:
    """A raw psycopg block (COPY) on `conn`, under its engine's limit; yields the psycopg connection."""
    driver = conn.connection.driver_connection
    limit = _LIMITS.get(conn.engine)
    if limit is None:
        yield driver
        return
    _WATCHER.begin(driver, limit)
    try:
        yield driver
    finally:
        _WATCHER.end(driver)
