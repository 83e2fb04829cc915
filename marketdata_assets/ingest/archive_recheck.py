"""Which settled days a re-run asks the archive about, and how: not at all, by the bucket listing, or by the
day's .CHECKSUM.

Why: archive files are mutable (SPEC C.2: "may be updated at a later date"), so a recorded checksum is a
pin, not a proof that the file is still the one loaded. Asking every day's .CHECKSUM made a re-run of a
symbol-year 365 requests (seconds on a real network) for files Binance rewrites rarely, and mostly soon
after publishing. So a day whose rows and checksum are recorded is
- TRUST: no request, when its file was confirmed within the last RECHECK_AFTER_DAYS and the day is older
  than RECENT_DAYS;
- LIST: its confirmation is older: one listing of the folder (1,000 keys a page: a year is one page) shows
  each file's LastModified, and a file not modified since its confirmation is trusted again (and the new
  confirmation recorded);
- ASK: its .CHECKSUM (one small request), when the day is recent, the listing shows the file rewritten or
  missing, or the user asked (`--verify`).
A rewritten file whose checksum differs is loaded again like any changed file.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from marketdata_assets.binance.archive import ArchiveClient, archive_path
from marketdata_assets.binance.errors import BinanceError
from marketdata_assets.binance.intervals import ms_to_datetime
from marketdata_assets.storage.ledger import LedgerRow

RECENT_DAYS = 7
RECHECK_AFTER_DAYS = 30
# how an unchanged day was vouched for (a loader counts them; the CLI says so)
TRUSTED, LISTING, CHECKSUM = "trusted", "listing", "checksum"


class Recheck(StrEnum):
    TRUST = "trust"
    LIST = "list"
    ASK = "ask"


def confirmed_at(row: LedgerRow) -> datetime:
    """When the file was last known to carry the recorded checksum (rows from before migration 0008: the
    row's last write, which came right after its load)."""
    at = row.archive_checked_at or row.updated_at or datetime.min.replace(tzinfo=UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def describe_rechecks(counts: Mapping[str, int]) -> str:
    """'12 not asked (confirmed within 30 days), 3 by the bucket listing, 2 by their .CHECKSUM'."""
    words = {TRUSTED: f"not asked (confirmed within {RECHECK_AFTER_DAYS} days)",
             LISTING: "by the bucket listing", CHECKSUM: "by their .CHECKSUM"}
    return ", ".join(f"{counts[k]} {w}" for k, w in words.items() if counts.get(k))


def how_to_recheck(row: LedgerRow, now_ms: int, verify: bool = False) -> Recheck:
    """The cheapest check that still catches a rewritten file (see the module docstring)."""
    now = ms_to_datetime(now_ms)
    if verify or row.day >= now.date() - timedelta(days=RECENT_DAYS):
        return Recheck.ASK
    if now - confirmed_at(row) > timedelta(days=RECHECK_AFTER_DAYS):
        return Recheck.LIST
    return Recheck.TRUST


def unmodified_by_listing(archive: ArchiveClient, kind: str, symbol: str, interval: str,
                          rows: Mapping[date, LedgerRow]) -> set[date]:
    """The days among `rows` whose file the bucket listing shows unmodified since its confirmation; one
    listing (a page per 1,000 keys) of the folder over the days' range. A listing that fails confirms none:
    those days fall back to their .CHECKSUM."""
    if not rows:
        return set()
    first, last = min(rows), max(rows)
    first_key = archive_path(kind, symbol, first, interval=interval)
    folder = first_key.rsplit("/", 1)[0] + "/"
    # keys sort by name: the day before's .CHECKSUM is the last key before the first wanted zip
    start_after = archive_path(kind, symbol, first - timedelta(days=1), interval=interval) + ".CHECKSUM"
    stop_after = archive_path(kind, symbol, last, interval=interval)
    try:
        listed = {k.key: k.last_modified for k in archive.list_keys(folder, start_after=start_after,
                                                                    stop_after=stop_after)}
    except BinanceError:
        return set()
    unmodified = set()
    for day, row in rows.items():
        modified = listed.get(archive_path(kind, symbol, day, interval=interval))
        if modified is not None and modified <= confirmed_at(row):
            unmodified.add(day)
    return unmodified
