"""The funding gap rule, a pure function: which funding events of a stretch of time are missing.

A symbol's interval is 8, 4 or 1 h and can change: the gap between two events must equal the interval of
one of them (a change of interval passes); a longer gap is a missing event, as is a closed stretch ending
more than one interval after its last event. The store applies it to a stored day
(`FundingStore.check_day`), which the loader records in the ledger and the Dagster check reports.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketdata_assets.binance.funding import HOUR_MS


def missing_funding(events: Sequence[tuple[int, int]], start_ms: int, end_ms: int,
                    previous: tuple[int, int] | None = None) -> list[int]:
    """Aligned times of funding events missing in [start_ms, end_ms).

    `events`: (aligned time, interval hours) ascending, inside the range; `previous`: the last event before
    it (None: nothing before, e.g. before listing). `end_ms` is the end of what has happened (a closed day).
    """
    missing: list[int] = []
    last = previous
    for at, hours in events:
        if last is not None:
            gap = at - last[0]
            allowed = {last[1] * HOUR_MS, hours * HOUR_MS}
            if gap not in allowed:
                step = last[1] * HOUR_MS
                missing += [t for t in range(last[0] + step, at, step) if start_ms <= t < end_ms] or [at - step]
        last = (at, hours)
    if last is not None:
        step = last[1] * HOUR_MS
        missing += [t for t in range(last[0] + step, end_ms, step) if t >= start_ms]
    return missing
