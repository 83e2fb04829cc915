"""Kline interval grid of the REST API: 1m..1d on fixed steps, 3d from the epoch, 1w on Mondays, 1M by month."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from marketdata_sim.symbols import DAY_MS

MINUTE_MS = 60_000
WEEK_MS = 7 * DAY_MS
MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; 1970-01-05 a Monday
FIXED_MS: dict[str, int] = {
    "1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS, "2h": 120 * MINUTE_MS, "4h": 240 * MINUTE_MS, "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS, "12h": 720 * MINUTE_MS, "1d": DAY_MS, "3d": 3 * DAY_MS, "1w": WEEK_MS,
}
REST_INTERVALS = (*FIXED_MS, "1M")
DAILY_ARCHIVE_INTERVALS = tuple(i for i, ms in FIXED_MS.items() if ms <= DAY_MS)
MONTHLY_ARCHIVE_INTERVALS = (*DAILY_ARCHIVE_INTERVALS, "3d", "1w", "1mo")


def is_intraday(interval: str) -> bool:
    return interval in FIXED_MS and FIXED_MS[interval] < DAY_MS


def bucket_start(t: np.ndarray, interval: str) -> np.ndarray:
    """Open time of the bar of `interval` containing each ms in `t`."""
    t = np.asarray(t, dtype=np.int64)
    if interval == "1M":
        return t.astype("datetime64[ms]").astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)
    if interval == "1w":
        return t - (t - MONDAY_OFFSET_MS) % WEEK_MS
    step = FIXED_MS[interval]
    return t - t % step


def shift_buckets(t: np.ndarray | int, interval: str, n: int = 1) -> np.ndarray:
    """Open time `n` bars after (or before, n < 0) the bar opening at `t`."""
    t = np.asarray(t, dtype=np.int64)
    if interval == "1M":
        months = t.astype("datetime64[ms]").astype("datetime64[M]") + n
        return months.astype("datetime64[ms]").astype(np.int64)
    return t + n * FIXED_MS[interval]


def close_times(open_times: np.ndarray, interval: str) -> np.ndarray:
    return shift_buckets(open_times, interval, 1) - 1


def first_open_at_or_after(ms: int, interval: str) -> int:
    """startTime off the grid rounds up (SPEC A.3)."""
    b = int(bucket_start(np.array([ms]), interval)[0])
    return b if b >= ms else int(shift_buckets(b, interval, 1))


def parse_time(value: int | str | datetime | None) -> int | None:
    """ms from an int, an ISO string ('2024-04-02T12:00:00Z') or a datetime; None stays None."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)
