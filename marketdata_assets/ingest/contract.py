"""The one contract every daily loader keeps: `load(symbol, days) -> [DayResult]`, one error convention.

Why: the Dagster assets, `marketdata download`, the quality score and the benches all consume loads; with
one result type they read one set of names, and with one error convention they handle failure one way:
- `InvalidInputError` (binance/intervals.py) is raised for bad input only: an unknown symbol, a bad
  interval or kind. Nothing has been fetched or written for the call then.
- Anything that goes wrong with a day (Binance errors after the clients' retries, a corrupt, mismatching
  or changed-layout file, failed validation) is that day's result with status FAILED and `error` naming
  the cause and the file; the other days load. A failed day's rows are never stored.
- Database errors propagate: what was committed before stays intact.
A day's rows and its ledger row (`DayResult.ledger_row()`) are written in ONE transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from marketdata_assets.storage.ledger import DayStatus, LedgerRow, LedgerStatus
from marketdata_assets.validation.gaps import EXCHANGE_GAP, AnyGap, gap_from_dict


@dataclass
class DayResult:
    """What one load did to one (dataset, symbol, interval, day): the ledger row's figures and the UI's.

    `interval` is "" for datasets without one. `gaps` are what the ledger's `missing` records (kline Gaps,
    a dataset's missing stretches, agg-trade id gaps), each with its class. `details` holds figures only
    one dataset has (first/last agg-trade id, stamps, bands...), shown as asset metadata.
    """

    dataset: str
    symbol: str
    interval: str
    day: date
    status: DayStatus
    expected_rows: int = 0
    stored_rows: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    archive_checksum: str | None = None
    gaps: list[AnyGap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)
    first_time: datetime | None = None
    last_time: datetime | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        parts = (self.symbol, self.interval, self.day.isoformat())
        return " ".join(p for p in parts if p)

    @property
    def failed(self) -> bool:
        return self.status == DayStatus.FAILED

    @property
    def exchange_gaps(self) -> list[AnyGap]:
        return [g for g in self.gaps if g.cls == EXCHANGE_GAP]

    def ledger_row(self) -> LedgerRow:
        """The ledger's record of this day (an `unchanged` day has none: its stored row stays)."""
        return LedgerRow(
            dataset=self.dataset,
            symbol=self.symbol,
            interval=self.interval,
            day=self.day,
            expected_rows=self.expected_rows,
            actual_rows=self.stored_rows,
            missing=[g.as_dict() for g in self.gaps],
            sources=dict(self.sources),
            archive_checksum=self.archive_checksum,
            status=LedgerStatus(self.status.value),
            last_error=self.error,
        )

    @classmethod
    def from_ledger(cls, row: LedgerRow, status: DayStatus | None = None) -> DayResult:
        """The figures of a day as the ledger recorded them (runs done elsewhere, or an `unchanged` day)."""
        return cls(
            dataset=row.dataset, symbol=row.symbol, interval=row.interval, day=row.day,
            status=status or DayStatus(row.status), expected_rows=row.expected_rows,
            stored_rows=row.actual_rows, sources=dict(row.sources or {}), archive_checksum=row.archive_checksum,
            gaps=[gap_from_dict(dict(g)) for g in row.missing or []], error=row.last_error,
        )


class DailyLoader(Protocol):
    """A dataset's loader: every day of `days` loaded and recorded, one result per day, in day order."""

    dataset: str

    def load(self, symbol: str, days: Sequence[date]) -> list[DayResult]: ...
