"""The per-partition ledger: one row per (dataset, symbol, interval, day) saying how complete that day is.

The one module that reads and writes `partition_ledger`: the load columns (rows, gaps, sources, checksum,
status) are written by the loaders in the same transaction as the rows they describe, so a day is never
marked complete without its rows; the check status and the repair-attempt bookkeeping are written by the
checks and the repair sensors through the functions here. Status words live in the enums below only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from marketdata_assets.binance.intervals import InvalidInputError, parse_day
from marketdata_assets.storage.day_content import content_of, day_digests
from marketdata_assets.storage.tables import LEDGER_STATUSES, partition_ledger
from marketdata_assets.validation.gaps import Gap

_KEY = ("dataset", "symbol", "interval", "day")


class LedgerStatus(StrEnum):
    """How complete a stored day is (the ledger's `status`; the table's check constraint lists the same)."""

    COMPLETE = "complete"
    # the day is not over yet, or not settled: its bars so far are stored
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    OUT_OF_RANGE = "out_of_range"


class DayStatus(StrEnum):
    """What one load did to a day: a ledger status, or `unchanged` (archive checksum as recorded: skipped)."""

    COMPLETE = LedgerStatus.COMPLETE.value
    INCOMPLETE = LedgerStatus.INCOMPLETE.value
    FAILED = LedgerStatus.FAILED.value
    OUT_OF_RANGE = LedgerStatus.OUT_OF_RANGE.value
    UNCHANGED = "unchanged"


class CheckStatus(StrEnum):
    """The worst verdict of a day's checks (the ledger's `check_status`); `warning` passes but is shown."""

    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"


assert tuple(s.value for s in LedgerStatus) == LEDGER_STATUSES, "the table's check lists the statuses"


@dataclass(frozen=True)
class LedgerRow:
    """One partition's record. `interval` is "" for datasets without one.

    `missing` holds gaps (Gap or their `as_dict()` form, with their class); `sources` maps a source to its
    row count. `repair_attempts=None` keeps the stored count (0 for a new row), so a normal reload does
    not reset the repair budget. `updated_at=None` means now.
    """

    dataset: str
    symbol: str
    interval: str
    day: date
    expected_rows: int
    actual_rows: int
    status: str
    missing: Sequence[Gap | dict[str, Any]] = field(default_factory=tuple)
    sources: dict[str, int] = field(default_factory=dict)
    archive_checksum: str | None = None
    check_status: str | None = None
    repair_attempts: int | None = None
    last_error: str | None = None
    updated_at: datetime | None = None
    # exchange time the archive file was last known to carry `archive_checksum` (loaded or confirmed)
    archive_checked_at: datetime | None = None
    # computed by `upsert_ledger` from the stored rows (what a caller passes is not used)
    content_digest: str | None = None

    def __post_init__(self) -> None:
        if self.status not in LEDGER_STATUSES:
            raise InvalidInputError(
                f"ledger row {self.dataset}/{self.symbol}/{self.interval}/{self.day}: unknown status "
                f"{self.status!r}, expected one of {LEDGER_STATUSES}"
            )
        object.__setattr__(self, "day", parse_day(self.day))

    def values(self, now: datetime) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "symbol": self.symbol,
            "interval": self.interval,
            "day": self.day,
            "expected_rows": int(self.expected_rows),
            "actual_rows": int(self.actual_rows),
            "missing": [g.as_dict() if isinstance(g, Gap) else dict(g) for g in self.missing],
            "sources": {str(k): int(v) for k, v in self.sources.items()},
            "archive_checksum": self.archive_checksum,
            "status": str(self.status),
            "check_status": None if self.check_status is None else str(self.check_status),
            "repair_attempts": self.repair_attempts or 0,
            "last_error": self.last_error,
            "updated_at": self.updated_at or now,
            "content_digest": self.content_digest,
            "archive_checked_at": self.archive_checked_at,
        }


def _insert_for(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


STORED_STATUSES = (LedgerStatus.COMPLETE.value, LedgerStatus.INCOMPLETE.value)
DayKey = tuple[str, str, str, date]  # (dataset, symbol, interval, day)


def _stored_digests(conn: Connection, rows: Sequence[LedgerRow], known: Mapping[DayKey, str]
                    ) -> dict[DayKey, str]:
    """The content digest of every stored (complete or incomplete) day among `rows`, read from its table
    in the caller's transaction: what the load just wrote, as the audit will read it back. `known`: days
    whose digest the caller computed from exactly the rows it has just inserted (not read again)."""
    wanted: dict[tuple[str, str, str], list[date]] = {}
    out: dict[DayKey, str] = {}
    for row in rows:
        key = (row.dataset, row.symbol, row.interval, row.day)
        if key in known:
            out[key] = known[key]
        elif str(row.status) in STORED_STATUSES and content_of(row.dataset) is not None:
            wanted.setdefault((row.dataset, row.symbol, row.interval), []).append(row.day)
    for (dataset, symbol, interval), days in wanted.items():
        for day, stored in day_digests(conn, dataset, symbol, interval, days).items():
            out[(dataset, symbol, interval, day)] = stored.digest
    return out


def upsert_ledger(conn: Connection, rows: Iterable[LedgerRow], known_digests: Mapping[DayKey, str] | None = None
                  ) -> int:
    """Insert or replace ledger rows in the caller's transaction (after the rows they describe: each stored
    day's content digest is read back from its table, unless `known_digests` gives it); returns how many
    were written."""
    rows = list(rows)
    if not rows:
        return 0
    now = datetime.now(UTC)
    digests = _stored_digests(conn, rows, known_digests or {})
    written = 0
    # Two statements: rows that set repair_attempts, and rows that keep the stored count.
    for keep_attempts in (False, True):
        group = [{**r.values(now), "content_digest": digests.get((r.dataset, r.symbol, r.interval, r.day))}
                 for r in rows if (r.repair_attempts is None) == keep_attempts]
        if not group:
            continue
        insert = _insert_for(conn)(partition_ledger)
        replaced = [c.name for c in partition_ledger.columns if c.name not in _KEY]
        if keep_attempts:
            replaced.remove("repair_attempts")
        insert = insert.on_conflict_do_update(
            index_elements=list(_KEY), set_={name: insert.excluded[name] for name in replaced}
        )
        conn.execute(insert, group)
        written += len(group)
    return written


def _row(mapping: Any) -> LedgerRow:
    return LedgerRow(**{c.name: mapping[c.name] for c in partition_ledger.columns})


def get_ledger(conn: Connection, dataset: str, symbol: str | None = None, interval: str | None = None,
               start_day: date | str | None = None, end_day: date | str | None = None) -> list[LedgerRow]:
    """Ledger rows of a dataset, optionally one symbol/interval and days in [start_day, end_day]."""
    t = partition_ledger.c
    query = sa.select(partition_ledger).where(t.dataset == dataset)
    if symbol is not None:
        query = query.where(t.symbol == symbol)
    if interval is not None:
        query = query.where(t.interval == interval)
    if start_day is not None:
        query = query.where(t.day >= parse_day(start_day))
    if end_day is not None:
        query = query.where(t.day <= parse_day(end_day))
    query = query.order_by(t.symbol, t.interval, t.day)
    return [_row(m) for m in conn.execute(query).mappings()]


def ledger_checksums(conn: Connection, dataset: str, symbol: str, interval: str,
                     days: Iterable[date | str]) -> dict[date, str]:
    """Archive checksums recorded for these days (days without one are left out)."""
    wanted = sorted({parse_day(d) for d in days})
    if not wanted:
        return {}
    t = partition_ledger.c
    query = sa.select(t.day, t.archive_checksum).where(
        t.dataset == dataset, t.symbol == symbol, t.interval == interval,
        t.day.in_(wanted), t.archive_checksum.is_not(None),
    )
    return {day: checksum for day, checksum in conn.execute(query)}


def _where_day(dataset: str, symbol: str, interval: str, day: Any) -> sa.ColumnElement[bool]:
    t = partition_ledger.c
    return sa.and_(t.dataset == dataset, t.symbol == symbol, t.interval == interval, t.day == day)


_SEVERITY = {CheckStatus.PASSED: 0, CheckStatus.WARNING: 1, CheckStatus.FAILED: 2}


def record_check_status(engine: Engine, dataset: str, symbol: str, interval: str,
                        statuses: Mapping[date, str], reset_repairs: Iterable[date] = (),
                        some_checks: bool = False) -> None:
    """Each day's check status; a day whose repair checks (gaps, audit) passed gets its repair count reset.

    `some_checks`: the run evaluated only some of the dataset's checks (an audit run), so a day keeps the
    worse of its recorded status and the new one: a gap still failing is not cleared by a passing audit.
    One executemany per kind of update: a symbol-year is 365 rows, and a round trip each was ~1 s.
    """
    if not statuses:
        return
    statuses = {day: CheckStatus(str(status)) for day, status in statuses.items()}
    reset = set(reset_repairs)
    now = datetime.now(UTC)
    status_only = (sa.update(partition_ledger).where(_where_day(dataset, symbol, interval, sa.bindparam("b_day")))
                   .values(check_status=sa.bindparam("b_status"), updated_at=now))
    with_reset = status_only.values(repair_attempts=0)
    with engine.begin() as conn:
        if some_checks:
            t = partition_ledger.c
            recorded = conn.execute(sa.select(t.day, t.check_status).where(
                t.dataset == dataset, t.symbol == symbol, t.interval == interval,
                t.day.in_(list(statuses)), t.check_status.is_not(None)))
            for day, stored in recorded:
                if stored in CheckStatus._value2member_map_ and \
                        _SEVERITY[CheckStatus(stored)] > _SEVERITY[statuses[day]]:
                    statuses[day] = CheckStatus(stored)
            reset = {day for day in reset if statuses[day] != CheckStatus.FAILED}
        for statement, group in ((with_reset, True), (status_only, False)):
            params = [{"b_day": day, "b_status": str(status)} for day, status in statuses.items()
                      if (day in reset) == group]
            if params:
                conn.execute(statement, params)


def record_content_digests(engine: Engine, dataset: str, symbol: str, interval: str,
                           digests: Mapping[date, str]) -> None:
    """Record digests of days that have none yet (loaded before migration 0007): their first audit's
    reading becomes the reference (a row that already holds a digest is left as it is)."""
    if not digests:
        return
    t = partition_ledger.c
    statement = (sa.update(partition_ledger)
                 .where(_where_day(dataset, symbol, interval, sa.bindparam("b_day")), t.content_digest.is_(None))
                 .values(content_digest=sa.bindparam("b_digest")))
    with engine.begin() as conn:
        conn.execute(statement, [{"b_day": day, "b_digest": digest} for day, digest in digests.items()])


def record_archive_checked(conn: Connection, dataset: str, symbol: str, interval: str, days: Iterable[date],
                           at: datetime) -> None:
    """The archive files of these days were found unchanged at `at` (exchange time): by their .CHECKSUM or
    by the bucket listing's LastModified. One statement; rows without a checksum are left alone."""
    wanted = sorted(set(days))
    if not wanted:
        return
    t = partition_ledger.c
    conn.execute(
        sa.update(partition_ledger)
        .where(t.dataset == dataset, t.symbol == symbol, t.interval == interval, t.day.in_(wanted),
               t.archive_checksum.is_not(None))
        .values(archive_checked_at=at)
    )


def repair_state(engine: Engine, dataset: str, symbol: str, interval: str, day: date) -> tuple[int, str | None]:
    """(repair count, check status) the ledger holds for one partition ((0, None) without a ledger row)."""
    t = partition_ledger.c
    query = sa.select(t.repair_attempts, t.check_status).where(_where_day(dataset, symbol, interval, day))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (int(row.repair_attempts or 0), row.check_status) if row is not None else (0, None)


def stored_days(engine: Engine, dataset: str, interval: str) -> list[tuple[str, date]]:
    """(symbol, day) of every day of a dataset that holds rows (complete or incomplete), oldest first."""
    t = partition_ledger.c
    query = (sa.select(t.symbol, t.day)
             .where(t.dataset == dataset, t.interval == interval, t.status.in_(STORED_STATUSES))
             .order_by(t.day, t.symbol))
    with engine.connect() as conn:
        return [(row.symbol, row.day) for row in conn.execute(query)]


def provisional_days(engine: Engine, dataset: str, intervals: Sequence[str], before: date,
                     limit: int) -> list[tuple[str, str, date]]:
    """(symbol, interval, day) stored without an archive checksum (loaded from REST or the stream), newest
    first, up to `before`: the days the archive can still settle."""
    t = partition_ledger.c
    query = (
        sa.select(t.symbol, t.interval, t.day)
        .where(
            t.dataset == dataset,
            t.interval.in_(list(intervals)),
            t.day <= before,
            t.archive_checksum.is_(None),
            t.status.in_((LedgerStatus.COMPLETE.value, LedgerStatus.INCOMPLETE.value)),
            t.actual_rows > 0,
        )
        .order_by(t.day.desc(), t.symbol, t.interval)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(row.symbol, row.interval, row.day) for row in conn.execute(query)]


def record_repair_attempt(conn: Connection, dataset: str, symbol: str, interval: str, day: date | str,
                          error: str | None = None) -> int | None:
    """Count one more repair attempt of an existing ledger row; returns the new count (None: no row)."""
    t = partition_ledger.c
    statement = (
        sa.update(partition_ledger)
        .where(_where_day(dataset, symbol, interval, parse_day(day)))
        .values(repair_attempts=t.repair_attempts + 1, last_error=error, updated_at=datetime.now(UTC))
        .returning(t.repair_attempts)
    )
    return conn.execute(statement).scalar_one_or_none()
