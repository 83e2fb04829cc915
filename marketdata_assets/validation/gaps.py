"""Gap finding and classification (DESIGN.md section 5), pure functions over open times.

A gap is an expected bar (on the interval grid, between listing and delisting, before now) that is not
stored. Classes: `fillable` (the exchange has it), `exchange_gap` (REST confirms there is no data),
`out_of_range` (before listing, after delisting, in the future: not a gap at all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

from marketdata_assets.binance.intervals import interval_ms, ms_to_datetime

FILLABLE = "fillable"
EXCHANGE_GAP = "exchange_gap"
OUT_OF_RANGE = "out_of_range"
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class Gap:
    """Missing bars with open times in [start_ms, end_ms) on the interval grid."""

    interval: str
    start_ms: int
    end_ms: int
    cls: str = UNCLASSIFIED

    @property
    def bars(self) -> int:
        return (self.end_ms - self.start_ms) // interval_ms(self.interval)

    def as_dict(self) -> dict:
        """JSON-ready form for ledgers and metadata."""
        return asdict(self) | {
            "bars": self.bars,
            "start": ms_to_datetime(self.start_ms).isoformat(),
            "end": ms_to_datetime(self.end_ms).isoformat(),
        }


@dataclass(frozen=True)
class Stretch:
    """Missing time [start_ms, end_ms) of a dataset without an interval grid (funding events, metric stamps,
    order book snapshots): a Gap needs an interval to count bars, these have none."""

    start_ms: int
    end_ms: int
    cls: str = UNCLASSIFIED

    def as_dict(self) -> dict:
        return {"interval": "", "start_ms": self.start_ms, "end_ms": self.end_ms, "cls": self.cls}


@dataclass(frozen=True)
class IdGap:
    """Missing aggregate-trade ids [start_id, end_id] (inclusive): agg trades are continuous in id, not time."""

    start_id: int
    end_id: int
    cls: str = EXCHANGE_GAP

    def as_dict(self) -> dict:
        return {"interval": "", "unit": "agg_id", "start_id": self.start_id, "end_id": self.end_id, "cls": self.cls}


#: anything a ledger row's `missing` records
AnyGap = Gap | Stretch | IdGap


def gap_from_dict(stored: dict) -> AnyGap:
    """The gap a ledger's `missing` entry (an `as_dict()` form) describes."""
    cls = stored.get("cls", UNCLASSIFIED)
    if "start_id" in stored:
        return IdGap(int(stored["start_id"]), int(stored["end_id"]), cls)
    if not stored.get("interval"):
        return Stretch(int(stored["start_ms"]), int(stored["end_ms"]), cls)
    return Gap(stored["interval"], int(stored["start_ms"]), int(stored["end_ms"]), cls)


def find_missing(open_times_ms: Iterable[int], interval: str, start_ms: int, end_ms: int) -> list[Gap]:
    """Runs of grid open times in [start_ms, end_ms) absent from `open_times_ms`."""
    import numpy as np  # here, not at the top: a re-run that finds nothing to load never needs it (70 ms)

    step = interval_ms(interval)
    first = -(-start_ms // step) * step
    if first >= end_ms:
        return []
    count = (end_ms - 1 - first) // step + 1
    present = np.fromiter(open_times_ms, dtype=np.int64)
    if present.size == count and present[0] == first and present[-1] == first + (count - 1) * step \
            and bool((np.diff(present) == step).all()):
        return []  # the usual case, a complete run of the grid: no set operation needed
    expected = np.arange(first, end_ms, step, dtype=np.int64)
    missing = expected[~np.isin(expected, present)]
    if missing.size == 0:
        return []
    breaks = np.nonzero(np.diff(missing) != step)[0]
    starts = np.concatenate(([missing[0]], missing[breaks + 1]))
    ends = np.concatenate((missing[breaks], [missing[-1]])) + step
    return [Gap(interval, int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def clip_to_range(gaps: Iterable[Gap], listed_from_ms: int | None, listed_until_ms: int | None,
                  now_ms: int) -> list[Gap]:
    """Split gaps at listing, delisting and now: the parts outside become `out_of_range`."""
    out: list[Gap] = []
    lo = listed_from_ms if listed_from_ms is not None else -(2**62)
    hi = min(listed_until_ms if listed_until_ms is not None else 2**62, now_ms)
    for gap in gaps:
        step = interval_ms(gap.interval)
        # a bar is in range when it opens at or after listing (rounded to the grid) and closes before `hi`
        in_lo = max(gap.start_ms, -(-lo // step) * step)
        in_hi = min(gap.end_ms, ((hi - step) // step + 1) * step if hi > 0 else gap.start_ms)
        if in_lo >= in_hi:
            out.append(replace(gap, cls=OUT_OF_RANGE))
            continue
        if gap.start_ms < in_lo:
            out.append(Gap(gap.interval, gap.start_ms, in_lo, OUT_OF_RANGE))
        out.append(Gap(gap.interval, in_lo, in_hi, gap.cls))
        if in_hi < gap.end_ms:
            out.append(Gap(gap.interval, in_hi, gap.end_ms, OUT_OF_RANGE))
    return out


def classify(gaps: Iterable[Gap], exchange_has: Callable[[Gap], list[int]]) -> list[Gap]:
    """Split unclassified gaps by what the exchange answers for them.

    `exchange_has(gap)` returns the open times REST has within the gap; those bars are `fillable`, the
    rest of the gap is an `exchange_gap`. Already classified gaps pass through unchanged.
    """
    out: list[Gap] = []
    for gap in gaps:
        if gap.cls != UNCLASSIFIED:
            out.append(gap)
            continue
        available = sorted(set(exchange_has(gap)))
        exchange_holes = find_missing(available, gap.interval, gap.start_ms, gap.end_ms)
        fillable = find_missing(
            [t for h in exchange_holes for t in range(h.start_ms, h.end_ms, interval_ms(gap.interval))],
            gap.interval, gap.start_ms, gap.end_ms,
        )
        out += [replace(g, cls=EXCHANGE_GAP) for g in exchange_holes]
        out += [replace(g, cls=FILLABLE) for g in fillable]
    return sorted(out, key=lambda g: g.start_ms)
