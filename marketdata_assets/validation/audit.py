"""The audit of stored data: does the table still hold, for each day, exactly what its load stored?

Read from the table itself (storage/day_content.py), against the ledger's record of the load:
- the row count against the ledger's (which is the expected grid less the exchange gaps recorded then):
  rows lost or added since fail;
- for a settled (complete) day, the content digest against the one recorded at load: rows altered fail.
A day not settled yet (incomplete: the stream and the next refresh still write it) only fails when rows
were lost. A day never loaded is a warning (nothing to audit), a day loaded before digests existed gets
its digest recorded by its first audit. Every failure is repairable: the repair sensors reload the day.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from sqlalchemy.engine import Engine

from marketdata_assets.storage.day_content import DayDigest, day_counts, day_digests
from marketdata_assets.storage.ledger import CheckStatus, LedgerRow, LedgerStatus, get_ledger, record_content_digests
from marketdata_assets.validation.kline_checks import DayCheck

SHORT = 12  # digest characters shown


def audit_day(day: date, row: LedgerRow | None, stored: DayDigest) -> DayCheck:
    """The audit verdict of one day from its ledger row and what its table holds now."""
    meta: dict = {"stored_rows": stored.rows, "stored_digest": (stored.digest or "")[:SHORT]}
    if row is None:
        return DayCheck(day, CheckStatus.WARNING, f"not loaded: nothing recorded to audit ({stored.rows} row(s) "
                        "stored)", meta)
    meta |= {"ledger_rows": row.actual_rows, "expected_rows": row.expected_rows,
             "recorded_digest": (row.content_digest or "")[:SHORT]}
    status = str(row.status)
    if status == LedgerStatus.FAILED:
        return DayCheck(day, CheckStatus.FAILED, f"the last load failed: {row.last_error or 'no cause recorded'}",
                        meta)
    if status == LedgerStatus.OUT_OF_RANGE:
        if stored.rows:
            return DayCheck(day, CheckStatus.WARNING, f"out of the symbol's trading range, yet {stored.rows} "
                            "row(s) stored", meta)
        return DayCheck(day, CheckStatus.PASSED, "out of the symbol's trading range: nothing stored, as recorded",
                        meta)
    lost = row.actual_rows - stored.rows
    if lost > 0:
        return DayCheck(day, CheckStatus.FAILED, f"{lost} row(s) lost since the load: the ledger records "
                        f"{row.actual_rows}, the table holds {stored.rows}", meta)
    if status == LedgerStatus.INCOMPLETE:
        return DayCheck(day, CheckStatus.PASSED, f"not settled yet: {stored.rows} row(s) stored, "
                        f"{row.actual_rows} at the last load (content compared once the day is complete)", meta)
    if lost < 0:
        return DayCheck(day, CheckStatus.FAILED, f"{-lost} row(s) more than the load stored: the ledger "
                        f"records {row.actual_rows}, the table holds {stored.rows}", meta)
    if stored.digest is None:
        return DayCheck(day, CheckStatus.PASSED, f"{stored.rows} row(s) as this run's load stored them (its "
                        "content digest, read from the table in the load's transaction, is what later audits "
                        "compare)", meta)
    if row.content_digest is None:
        return DayCheck(day, CheckStatus.PASSED, f"{stored.rows} row(s) as recorded; no digest recorded "
                        "(loaded before digests existed): this reading is now the reference", meta)
    if row.content_digest != stored.digest:
        return DayCheck(day, CheckStatus.FAILED, f"rows altered since the load: {stored.rows} row(s) as "
                        f"recorded, but their content digest is {stored.digest[:SHORT]}, the load stored "
                        f"{row.content_digest[:SHORT]}", meta)
    grid = f" of {row.expected_rows} on the grid" if row.expected_rows != stored.rows else ""
    return DayCheck(day, CheckStatus.PASSED, f"{stored.rows} row(s){grid}, content as loaded", meta)


def audit_days(engine: Engine, dataset: str, symbol: str, interval: str, days: Sequence[date],
               loaded_now: Collection[date] = ()) -> dict[date, DayCheck]:
    """The audit of one symbol's days: one ledger read, one table read per run of days. Days in `loaded_now`
    (loaded by the same run, their digest computed from the table moments ago) are counted, not read."""
    days = sorted(set(days))
    if not days:
        return {}
    with engine.connect() as conn:
        wanted = set(days)
        ledger = {r.day: r for r in get_ledger(conn, dataset, symbol, interval, days[0], days[-1]) if r.day in wanted}
        fresh = wanted & set(loaded_now)
        stored = {**day_digests(conn, dataset, symbol, interval, [d for d in days if d not in fresh]),
                  **day_counts(conn, dataset, symbol, interval, sorted(fresh))}
    verdicts = {day: audit_day(day, ledger.get(day), stored[day]) for day in days}
    baseline = {day: stored[day].digest for day, row in ledger.items()
                if row.content_digest is None and stored[day].digest is not None
                and verdicts[day].status == CheckStatus.PASSED
                and str(row.status) == LedgerStatus.COMPLETE}
    record_content_digests(engine, dataset, symbol, interval, baseline)
    return verdicts
