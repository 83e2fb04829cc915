"""What a stored day holds, read back from its table: the row count and a content digest per day.

Why: the ledger says what a load stored; an audit must be able to tell later whether the table still
holds exactly that (rows deleted or altered by hand, by a bad migration, by another writer). The digest
is sha256 over the day's rows in key order, each row as the database returns its values (decimals
exactly as stored, times as epoch ms), with the ingestion bookkeeping left out (id, source, ingested_at:
the same values confirmed by another source are the same content). The ledger computes it when a load
records a day (same transaction, storage/ledger.py); the audit check recomputes it (defs/datasets/audit.py).
One `DayContent` per ledger dataset says which table and time column make up its days.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection

from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.binance.kline_kinds import KLINE_KINDS
from marketdata_assets.storage.sql_time import epoch_ms, is_postgres
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.tables_funding import funding_rates
from marketdata_assets.storage.tables_market_stats import book_depth, open_interest_metrics
from marketdata_assets.storage.tables_price_klines import kline_table
from marketdata_assets.storage.tables_stream import agg_trades
from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp

if TYPE_CHECKING:
    import numpy as np

# ingestion bookkeeping, not content
NOT_CONTENT = frozenset({"id", "source", "ingested_at"})
EPOCH_DAY = date(1970, 1, 1)
# days read per statement: a symbol-year of 1m bars in one result set is 525,600 rows held at once
DAYS_PER_READ = 31


@dataclass(frozen=True)
class DayContent:
    """Where a dataset's days live: table, the time column that places a row in a day, the row order."""

    table: sa.Table
    time_column: str
    order: tuple[str, ...] = ()  # after the time column (ties: several rows at one time)
    has_interval: bool = False
    closed_right: bool = False  # rows stamped at their interval's end: a day is (00:00, 24:00]

    def day_of(self, ms: int) -> date:
        """The UTC day a row stamped `ms` belongs to."""
        return EPOCH_DAY + timedelta(days=((ms - 1) if self.closed_right else ms) // DAY_MS)


@dataclass(frozen=True)
class DayDigest:
    """A stored day: how many rows, and the sha256 of their content (None: counted only, not read)."""

    rows: int
    digest: str | None


DAY_CONTENTS: dict[str, DayContent] = {
    **{kind.dataset: DayContent(kline_table(name), "open_time", has_interval=True)
       for name, kind in KLINE_KINDS.items()},
    "funding_rates": DayContent(funding_rates, "funding_time"),
    "agg_trades": DayContent(agg_trades, "trade_time", order=("agg_id",)),
    "metrics": DayContent(open_interest_metrics, "create_time", closed_right=True),
    "book_depth": DayContent(book_depth, "snapshot_time", order=("percentage",)),
}
assert DAY_CONTENTS["klines"].table is kline_data


def content_of(dataset: str) -> DayContent | None:
    """The DayContent of a ledger dataset (None: not a table-backed daily dataset)."""
    return DAY_CONTENTS.get(dataset)


def _as_stored(column: sa.Column, postgres: bool) -> sa.ColumnElement:
    """The value as the database holds it, without Python type processing: ms for times, text for decimals."""
    if isinstance(column.type, UtcTimestamp):
        return epoch_ms(column, postgres)
    if isinstance(column.type, ExactDecimal):
        return sa.cast(column, sa.Text) if postgres else sa.type_coerce(column, sa.Text)
    return column


def _runs(days: Iterable[date], longest: int = DAYS_PER_READ) -> list[list[date]]:
    """Sorted days as runs of consecutive days, each at most `longest` days long."""
    out: list[list[date]] = []
    for day in sorted(set(days)):
        if out and (day - out[-1][-1]).days == 1 and len(out[-1]) < longest:
            out[-1].append(day)
        else:
            out.append([day])
    return out


def day_digests(conn: Connection, dataset: str, symbol: str, interval: str,
                days: Sequence[date]) -> dict[date, DayDigest]:
    """Row count and digest of each of `days` as stored now (a day without rows: 0 rows, the empty digest).

    The digested text: one line per row in key order, its content columns as the database renders them
    (times as epoch ms) joined by `|`, NULL as empty. PostgreSQL hashes it in the server (one row per day
    comes back: 1.1-1.9 s for a symbol-year of 1m bars against ~3 s read into Python), SQLite in Python. A
    digest is compared only with one the same store computed (the ledger lives beside the table)."""
    content = DAY_CONTENTS[dataset]
    digest_run = _digest_run_postgres if is_postgres(conn) else _digest_run_python
    out: dict[date, DayDigest] = {}
    for run in _runs(days):
        found = digest_run(conn, content, symbol, interval, run)
        out.update({day: found.get(day, EMPTY_DAY) for day in run})
    return out


EMPTY_DAY = DayDigest(0, hashlib.sha256().hexdigest())


def day_counts(conn: Connection, dataset: str, symbol: str, interval: str,
               days: Sequence[date]) -> dict[date, DayDigest]:
    """Row count of each of `days` (digest None): what an audit compares for a day its own run just loaded,
    whose digest the load computed from the table moments before."""
    content = DAY_CONTENTS[dataset]
    epoch_day = _epoch_day(content, is_postgres(conn)).label("epoch_day")
    out: dict[date, DayDigest] = {}
    for run in _runs(days):
        query = (sa.select(epoch_day, sa.func.count()).where(*_where(content, symbol, interval, run))
                 .group_by(epoch_day))
        found = {EPOCH_DAY + timedelta(days=int(d)): int(n) for d, n in conn.execute(query)}
        out.update({day: DayDigest(found.get(day, 0), None) for day in run})
    return out


def days_holding(conn: Connection, dataset: str, symbol: str, interval: str,
                 expected: Mapping[date, int]) -> set[date]:
    """The days of `expected` whose stored row count is the one given: a re-run's check that a recorded
    day's rows are all still there.

    Why not `day_counts`: grouping a symbol-year by day costs the database 0.4-0.6 s, a plain count of the
    same range 0.1 s. Each run of consecutive days is counted in one statement; only a run whose total
    differs is counted day by day. A deleted row always shows; a deletion and an off-grid insertion in
    another day of the same run cancel out, as an altered value goes unseen: what the audit's digest is for."""
    content = DAY_CONTENTS[dataset]
    holding: set[date] = set()
    for run in _runs(expected, longest=len(expected)):
        total = conn.execute(sa.select(sa.func.count()).where(*_where(content, symbol, interval, run))).scalar_one()
        if total == sum(expected[day] for day in run):
            holding.update(run)
            continue
        counts = day_counts(conn, dataset, symbol, interval, run)
        holding.update(day for day in run if counts[day].rows == expected[day])
    return holding


# The digested line of a kline row is its archive CSV line without the last field (`ignore`), `|` for `,`:
# the table's content columns are the CSV's fields in the CSV's order. It equals what the database
# renders only for canonical numbers (NUMERIC drops leading zeros, a bare point, the sign of zero).
_LAST_FIELD = re.compile(rb",[^,\n]*\n")
_NEGATIVE_ZERO = re.compile(rb"-0(?:\.0*)?[,\n]")
_LEADING_ZERO = re.compile(rb",-?0[0-9]")
_COMMA_TO_BAR = bytes.maketrans(b",", b"|")
_NL, _COMMA, _POINT, _ZERO = (ord(c) for c in "\n,.0")
assert [c.name for c in kline_data.columns if c.name not in NOT_CONTENT | {"symbol", "interval"}] == [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades_count",
    "taker_buy_volume", "taker_buy_quote_volume"]


def kline_csv_digest(body: bytes) -> DayDigest | None:
    """The digest a stored day of klines will have, from the archive-layout CSV of exactly its rows (one
    line per row, in open-time order, ending in a newline); None when some number would be rendered
    differently by the database (then the digest is read back from the table).

    Why: reading a symbol-year back to digest it costs the load about 2 s of database time; this is about
    0.4 ms per day (0.15 s a year), done while the previous chunk is being written. The scans are numpy
    comparisons over the bytes: the regexes and substring searches they replace took 0.75 s a year."""
    if not body:
        return EMPTY_DAY
    if body[:1] in (b"0", b".", b"-", b"\n"):
        return None  # a line starting oddly (open times are positive, never zero-padded)
    import numpy as np  # the load's prepare thread has it imported already (validation)

    text = np.frombuffer(body, np.uint8)
    newlines = np.flatnonzero(text == _NL)
    rows = len(newlines)
    if not rows or newlines[-1] != len(text) - 1 or (np.diff(newlines) == 1).any():
        return None  # not newline-terminated, or a blank line
    if not _as_rendered(body, text, newlines):
        return None
    if (text[newlines - 1] == _ZERO).all() and (text[newlines - 2] == _COMMA).all():
        # `ignore` is "0" on every line of Binance's files: drop those two bytes of each line at once
        keep = np.ones(len(text), bool)
        keep[newlines - 1] = keep[newlines - 2] = False
        cut = text[keep].tobytes()
    else:
        cut = _LAST_FIELD.sub(b"\n", body)
    return DayDigest(rows, hashlib.sha256(cut.translate(_COMMA_TO_BAR)[:-1]).hexdigest())


def _as_rendered(body: bytes, text: np.ndarray, newlines: np.ndarray) -> bool:
    """Whether every number of the CSV `body` (`text`, its bytes as uint8) is written as the database
    writes it: no leading zero before a digit, no bare point, no negative zero."""
    separator = text == _COMMA
    separator[newlines] = True
    point = text == _POINT
    if (separator[:-1] & point[1:]).any() or (point[:-1] & separator[1:]).any():
        return False  # ".5" or "5."
    zero_first = separator[:-2] & (text[1:-1] == _ZERO)
    if zero_first.any() and (zero_first & ((text[2:] - _ZERO) < 10)).any():
        return False  # "012"
    if b"-" in body:  # rare (premium index): the signed forms by regex
        return not (b"\n-" in body or b",-." in body or _LEADING_ZERO.search(body) or _NEGATIVE_ZERO.search(body))
    return True


def _content_columns(content: DayContent, postgres: bool) -> list[sa.ColumnElement]:
    table = content.table
    values = [c for c in table.columns if c.name not in NOT_CONTENT and c.name not in ("symbol", "interval")
              and c.name != content.time_column]
    return [epoch_ms(table.c[content.time_column], postgres), *[_as_stored(c, postgres) for c in values]]


def _epoch_day(content: DayContent, postgres: bool) -> sa.ColumnElement[int]:
    """The day a row belongs to, as days since 1970-01-01, in SQL (DayContent.day_of's rule)."""
    return (epoch_ms(content.table.c[content.time_column], postgres) - (1 if content.closed_right else 0)) // DAY_MS


def _where(content: DayContent, symbol: str, interval: str, run: Sequence[date]) -> list[sa.ColumnElement]:
    table = content.table
    time_col = table.c[content.time_column]
    lo = datetime.fromtimestamp(day_start_ms(run[0]) / 1000, UTC)
    hi = datetime.fromtimestamp((day_start_ms(run[-1]) + DAY_MS) / 1000, UTC)
    bounds = [time_col > lo, time_col <= hi] if content.closed_right else [time_col >= lo, time_col < hi]
    where = [table.c.symbol == symbol, *bounds]
    if content.has_interval:
        where.append(table.c.interval == interval)
    return where


def _order(content: DayContent) -> list[sa.Column]:
    return [content.table.c[name] for name in (content.time_column, *content.order)]


def _digest_run_postgres(conn: Connection, content: DayContent, symbol: str, interval: str,
                         run: Sequence[date]) -> dict[date, DayDigest]:
    columns = _content_columns(content, postgres=True)
    line = sa.func.concat_ws("|", *[sa.func.coalesce(sa.cast(c, sa.Text), "") for c in columns])
    order = _order(content)
    rows = (sa.select(_epoch_day(content, postgres=True).label("epoch_day"), line.label("line"),
                      *[c.label(f"order_{i}") for i, c in enumerate(order)])
            .where(*_where(content, symbol, interval, run)).subquery())
    text = sa.func.string_agg(rows.c.line, aggregate_order_by(sa.literal("\n"),
                                                              *[rows.c[f"order_{i}"] for i in range(len(order))]))
    digest = sa.func.encode(sa.func.sha256(sa.func.convert_to(text, "UTF8")), "hex")
    query = sa.select(rows.c.epoch_day, sa.func.count(), digest).group_by(rows.c.epoch_day)
    return {EPOCH_DAY + timedelta(days=int(d)): DayDigest(int(n), h) for d, n, h in conn.execute(query)}


def _digest_run_python(conn: Connection, content: DayContent, symbol: str, interval: str,
                       run: Sequence[date]) -> dict[date, DayDigest]:
    query = (sa.select(*_content_columns(content, postgres=False))
             .where(*_where(content, symbol, interval, run)).order_by(*_order(content)))
    hashes: dict[date, hashlib._Hash] = {}
    counts: dict[date, int] = {}
    for row in conn.execute(query):
        day = content.day_of(int(row[0]))
        line = "|".join("" if v is None else str(v) for v in row)
        if day in hashes:
            hashes[day].update(("\n" + line).encode())
            counts[day] += 1
        else:
            hashes[day] = hashlib.sha256(line.encode())
            counts[day] = 1
    return {day: DayDigest(counts[day], hashes[day].hexdigest()) for day in hashes}
