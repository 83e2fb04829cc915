"""The kline upsert rule (docs/ARCHITECTURE.md "Upsert rule") as one SQL condition for both databases.

Rewrite a stored row only when its values differ, never let `rest`/`stream` overwrite `archive`, and
promote a provisional row to `archive` when the archive confirms it. A re-run of the same data matches
no row, so nothing is written (ingested_at is untouched).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from marketdata_assets.storage.tables import KLINE_VALUE_COLUMNS, kline_data

ARCHIVE = "archive"
KEY_COLUMNS = ("symbol", "interval", "open_time")


def unique_key(table: sa.Table = kline_data) -> str:
    """The name of a kline-shaped table's (symbol, interval, open_time) key: its primary key."""
    return f"pk_{table.name}"


def rewrite_condition(excluded: Any, table: sa.Table = kline_data) -> sa.ColumnElement[bool]:
    """True for a conflicting row of `table` that the incoming (`excluded`) row should replace."""
    stored = table.c
    values_differ = sa.or_(*[stored[name] != excluded[name] for name in KLINE_VALUE_COLUMNS])
    archive_kept = sa.or_(excluded.source == ARCHIVE, stored.source != ARCHIVE)
    promotes = sa.and_(excluded.source == ARCHIVE, stored.source != ARCHIVE)
    return sa.and_(archive_kept, sa.or_(values_differ, promotes))


def rewrite_values(excluded: Any, now: Any) -> dict[str, Any]:
    """SET clause: every value, the new source, and the time of this write."""
    return {name: excluded[name] for name in (*KLINE_VALUE_COLUMNS, "source")} | {"ingested_at": now}
