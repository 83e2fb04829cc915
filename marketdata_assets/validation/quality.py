"""The data quality of one symbol's UTC day across datasets, from `partition_ledger` and the tables.

Per dataset (a ledger dataset and interval, e.g. ("klines", "1m") or ("funding_rates", "")):
- completeness: actual / expected rows (1.0 when the day is out of range, 0.0 when it was never loaded or
  its load failed); for kline tables "actual" is what the table holds now, so rows lost since the load
  lower it; for other datasets it is the load's count (their checks compare the table with it);
- gaps by class: how many missing stretches the ledger recorded as fillable / exchange gap / out of range;
- repairs: the ledger's repair_attempts (runs the repair sensors made for this day);
- provisional share: rows not (yet) confirmed by the archive. For kline tables (klines and mark / index /
  premium klines) it is read from the table's `source` column, so a day settled by the archive after its
  ledger row was written counts as settled; for other datasets from the ledger's sources.
The `score` of a day is the mean completeness of the datasets that apply to it. No Dagster import: the
asset (defs/quality) only formats this.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marketdata_assets.binance.kline_kinds import KIND_OF_DATASET
from marketdata_assets.storage.ledger import LedgerRow, get_ledger
from marketdata_assets.storage.tables_price_klines import KLINE_TABLES

GAP_CLASSES = ("fillable", "exchange_gap", "out_of_range")
# ledger dataset -> kline kind whose table has the rows (and their `source`)



@dataclass
class DatasetQuality:
    dataset: str
    interval: str
    status: str                     # the ledger's load status, or "not_loaded"
    check_status: str | None
    expected_rows: int = 0
    actual_rows: int = 0
    completeness: float = 0.0
    gaps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GAP_CLASSES, 0))
    repairs: int = 0
    provisional_rows: int = 0
    provisional_share: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.dataset}_{self.interval}" if self.interval else self.dataset

    @property
    def applies(self) -> bool:
        """Whether the day's score counts it: loaded, and the day in the symbol's range (a dataset never
        loaded for the day says nothing about the day's quality; it is listed as not loaded)."""
        return self.status not in ("out_of_range", "not_loaded")


@dataclass
class DayQuality:
    symbol: str
    day: date
    datasets: list[DatasetQuality]
    # what the daily-dataset factory reads of a day's outcome: scoring a day never fails
    status: str = "complete"
    error: str | None = None

    @property
    def score(self) -> float:
        """Mean completeness of the configured datasets loaded for the day (1.0 when none is)."""
        applying = [d.completeness for d in self.datasets if d.applies]
        return sum(applying) / len(applying) if applying else 1.0

    def markdown(self) -> str:
        lines = ["| dataset | status | check | rows / expected | completeness | fillable gaps | exchange gaps "
                 "| repairs | provisional |", "|---|---|---|---|---|---|---|---|---|"]
        for d in self.datasets:
            lines.append(
                f"| {d.label} | {d.status} | {d.check_status or '-'} | {d.actual_rows} / {d.expected_rows} | "
                f"{d.completeness:.2%} | {d.gaps['fillable']} | {d.gaps['exchange_gap']} | {d.repairs} | "
                f"{d.provisional_share:.2%} |")
        missing = ", ".join(d.label for d in self.datasets if d.status == "not_loaded") or "none"
        lines.append(f"\n**score {self.score:.2%}** (mean completeness of {sum(d.applies for d in self.datasets)} "
                     f"loaded dataset(s); not loaded: {missing})")
        return "\n".join(lines)


def _from_ledger(dataset: str, interval: str, row: LedgerRow | None) -> DatasetQuality:
    if row is None:
        return DatasetQuality(dataset, interval, "not_loaded", None)
    q = DatasetQuality(dataset, interval, row.status, row.check_status, row.expected_rows, row.actual_rows,
                       repairs=row.repair_attempts or 0)
    for gap in row.missing or []:
        cls = str(gap.get("cls", "fillable"))
        q.gaps[cls] = q.gaps.get(cls, 0) + 1
    if row.status == "out_of_range":
        q.completeness = 1.0
    elif row.status != "failed" and row.expected_rows > 0:
        q.completeness = min(row.actual_rows / row.expected_rows, 1.0)
    elif row.status != "failed" and row.expected_rows == 0:
        q.completeness = 1.0
    sources = Counter({str(k): int(v) for k, v in (row.sources or {}).items()})
    q.provisional_rows = sum(n for source, n in sources.items() if source != "archive")
    return q


def _kline_sources(engine: Engine, kind: str, symbol: str, interval: str, day: date) -> Counter[str]:
    table = KLINE_TABLES[kind]
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    query = (sa.select(table.c.source, sa.func.count()).where(
        table.c.symbol == symbol, table.c.interval == interval, table.c.open_time >= start,
        table.c.open_time < start + timedelta(days=1)).group_by(table.c.source))
    with engine.connect() as conn:
        return Counter({str(source): int(n) for source, n in conn.execute(query)})


def day_quality(engine: Engine, symbol: str, day: date, datasets: Sequence[tuple[str, str]]) -> DayQuality:
    """The quality of (symbol, day) for each (ledger dataset, interval) of `datasets`, in that order."""
    with engine.connect() as conn:
        ledger = {(r.dataset, r.interval): r for name in {d for d, _ in datasets}
                  for r in get_ledger(conn, name, symbol, None, day, day)}
    out = []
    for dataset, interval in datasets:
        q = _from_ledger(dataset, interval, ledger.get((dataset, interval)))
        if dataset in KIND_OF_DATASET and q.status not in ("not_loaded", "out_of_range"):
            sources = _kline_sources(engine, KIND_OF_DATASET[dataset], symbol, interval, day)
            q.provisional_rows = sum(n for source, n in sources.items() if source != "archive")
            stored = sum(sources.values())
            q.provisional_share = q.provisional_rows / stored if stored else 0.0
            if q.status != "failed" and q.expected_rows > 0:  # rows lost since the load count against it
                q.actual_rows = stored
                q.completeness = min(stored / q.expected_rows, 1.0)
        else:
            q.provisional_share = q.provisional_rows / q.actual_rows if q.actual_rows else 0.0
        out.append(q)
    return DayQuality(symbol, day, out)
