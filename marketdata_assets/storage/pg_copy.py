"""Reading a query out of PostgreSQL as CSV with COPY: the fastest way rows leave the server.

Used by the kline reader and the exporter; the query is a compiled SQLAlchemy statement with bound
parameters, never text built from values.
"""

from __future__ import annotations

import io

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketdata_assets.storage.hung_guard import guarded


def copy_out_csv(conn: Connection, query: sa.Select) -> io.BytesIO:
    """The rows of `query` as CSV (no header) in a buffer positioned at its start; empty when no rows."""
    compiled = query.compile(dialect=conn.dialect)
    statement = psycopg.sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(psycopg.sql.SQL(str(compiled)))
    buffer = io.BytesIO()
    with guarded(conn) as driver, driver.cursor() as cursor, cursor.copy(statement, compiled.params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    return buffer
