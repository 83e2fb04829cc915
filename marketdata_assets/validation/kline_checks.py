"""The checks of kline-shaped tables (trade klines and mark/index/premium price klines) as pure functions.

Each function takes the stored rows of a symbol over a range of days (one read for the whole range: a
symbol-year is checked in one pass) and returns one `DayCheck` per day. No Dagster here: the code
location (defs/kline_checks.py) turns the verdicts into check evaluations attributed to each partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from marketdata_assets.binance.intervals import DAY_MS, day_start_ms, interval_ms
from marketdata_assets.binance.kline_kinds import KlineKind
from marketdata_assets.storage.ledger import CheckStatus, LedgerStatus
from marketdata_assets.validation.gaps import EXCHANGE_GAP, FILLABLE, OUT_OF_RANGE, Gap, find_missing
from marketdata_assets.validation.schemas import KlineValidationError, validate_klines

PASSED, WARNING, FAILED = CheckStatus.PASSED, CheckStatus.WARNING, CheckStatus.FAILED
# A first bar opening this far from the previous day's last close is flagged (a warning, not an error:
# crypto can move that much in a minute, rarely).
CONTINUITY_MAX_JUMP = 0.05
AGGREGATE_RTOL = 1e-9


@dataclass
class DayCheck:
    """One check's verdict for one day; `warning` passes but is shown (exchange gaps, price jumps)."""

    day: date
    status: str
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status != FAILED


def open_ms(frame: pd.DataFrame) -> np.ndarray:
    """Open times as int64 ms (the canonical frame holds datetime64[ms, UTC])."""
    if frame.empty:
        return np.empty(0, dtype=np.int64)
    return frame["open_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)


def split_by_day(frame: pd.DataFrame, days: Sequence[date]) -> dict[date, pd.DataFrame]:
    """Rows of each day (by open time); days without rows get an empty frame."""
    times = open_ms(frame)
    if times.size and not bool(np.all(times[1:] >= times[:-1])):
        order = np.argsort(times, kind="stable")
        frame, times = frame.iloc[order], times[order]
    out = {}
    for day in days:
        lo = day_start_ms(day)
        a, b = np.searchsorted(times, [lo, lo + DAY_MS], side="left")
        out[day] = frame.iloc[a:b]
    return out


def combine_parts(day: date, parts: dict[str, DayCheck]) -> DayCheck:
    """One verdict from several named parts: the worst status; the description names every part that did
    not pass (or lists what held); the metadata keeps each part's status and a failing part's details."""
    rank = {PASSED: 0, WARNING: 1, FAILED: 2}
    worst = max((p.status for p in parts.values()), key=rank.__getitem__, default=PASSED)
    meta: dict[str, Any] = {f"{name}_status": str(part.status) for name, part in parts.items()}
    for name, part in parts.items():
        if part.status != PASSED:
            meta.update({f"{name}_{key}": value for key, value in part.metadata.items()})
    bad = [f"{name} {part.status}: {part.description}" for name, part in parts.items() if part.status != PASSED]
    description = "; ".join(bad) if bad else "; ".join(part.description for part in parts.values())
    return DayCheck(day, worst, description, meta)


# -- gaps ---------------------------------------------------------------------------------------------
def _contiguous(bars: np.ndarray, step: int, interval: str, cls: str) -> list[Gap]:
    breaks = np.nonzero(np.diff(bars) != step)[0]
    starts = np.concatenate(([bars[0]], bars[breaks + 1]))
    ends = np.concatenate((bars[breaks], [bars[-1]])) + step
    return [Gap(interval, int(s), int(e), cls) for s, e in zip(starts, ends, strict=True)]


def classify_missing(stored_ms: Iterable[int], interval: str, day: date, ledger_gaps: Sequence[dict]) -> list[Gap]:
    """Missing bars of a day, classed by what the load recorded: a bar inside a recorded exchange gap or
    out-of-range span keeps that class; any other missing bar is fillable (the exchange had it, or nobody
    asked yet: a deleted row, a failed load)."""
    lo = day_start_ms(day)
    missing = find_missing(stored_ms, interval, lo, lo + DAY_MS)
    if not missing:
        return []
    step = interval_ms(interval)
    bars = np.concatenate([np.arange(g.start_ms, g.end_ms, step, dtype=np.int64) for g in missing])
    labels = np.full(bars.size, FILLABLE, dtype=object)
    for gap in ledger_gaps:
        cls = gap.get("cls")
        if cls in (EXCHANGE_GAP, OUT_OF_RANGE):
            labels[(bars >= int(gap["start_ms"])) & (bars < int(gap["end_ms"]))] = cls
    out: list[Gap] = []
    for cls in (FILLABLE, EXCHANGE_GAP, OUT_OF_RANGE):
        selected = bars[labels == cls]
        if selected.size:
            out += _contiguous(selected, step, interval, cls)
    return sorted(out, key=lambda g: g.start_ms)


def _full_grid(times: np.ndarray, day: date, step: int) -> bool:
    """Whether a day's sorted open times are exactly its whole grid (the common case: nothing missing)."""
    lo = day_start_ms(day)
    n = DAY_MS // step
    return (times.size == n and int(times[0]) == lo and int(times[-1]) == lo + DAY_MS - step
            and bool(np.all(np.diff(times) == step)))


def check_gaps_times(day: date, times: np.ndarray, interval: str, ledger: Any | None) -> DayCheck:
    """Fail on fillable gaps; pass with a warning on exchange gaps; out of range is not a gap (from the
    day's sorted open times, int64 ms)."""
    if ledger is None:
        return DayCheck(day, FAILED, "never loaded: no ledger entry for this day",
                        {"fillable_bars": 0, "never_loaded": True})
    if ledger.status == LedgerStatus.FAILED:
        return DayCheck(day, FAILED, f"the last load failed: {ledger.last_error}", {"last_error": ledger.last_error})
    if _full_grid(times, day, interval_ms(interval)):
        gaps: list[Gap] = []
    else:
        gaps = classify_missing(times, interval, day, list(ledger.missing or []))
    bars = {cls: sum(g.bars for g in gaps if g.cls == cls) for cls in (FILLABLE, EXCHANGE_GAP, OUT_OF_RANGE)}
    meta = {
        "fillable_bars": bars[FILLABLE],
        "exchange_gap_bars": bars[EXCHANGE_GAP],
        "out_of_range_bars": bars[OUT_OF_RANGE],
        "stored_rows": int(times.size),
        "gaps": [g.as_dict() for g in gaps if g.cls != OUT_OF_RANGE][:50],
    }
    if bars[FILLABLE]:
        return DayCheck(day, FAILED, f"{bars[FILLABLE]} bar(s) missing that the exchange may have "
                        "(fillable): the repair sensor re-runs this partition", meta)
    if bars[EXCHANGE_GAP]:
        return DayCheck(day, WARNING, f"{bars[EXCHANGE_GAP]} bar(s) missing at the exchange too "
                        "(exchange gap, e.g. maintenance): recorded, not retried", meta)
    if ledger.status == LedgerStatus.OUT_OF_RANGE:
        return DayCheck(day, PASSED, "out of range (before listing, after delisting or in the future)", meta)
    return DayCheck(day, PASSED, "no gaps", meta)


# -- schema, duplicates, OHLC -------------------------------------------------------------------------
def check_schema(days: Sequence[date], frame: pd.DataFrame, interval: str, label: str,
                 signed: bool = False) -> dict[date, DayCheck]:
    """pandera over the whole range at once; on failure, failures are attributed to their days."""
    bad: dict[date, list[str]] = {}
    if not frame.empty:
        try:
            validate_klines(frame.reset_index(drop=True), interval, label, signed_prices=signed)
        except KlineValidationError as exc:
            failures = exc.failures
            times = open_ms(frame)
            for _, row in failures.iterrows():
                idx = row.get("index")
                text = f"{row.get('column') or 'frame'}: {row.get('check')}"
                if pd.notna(idx) and 0 <= int(idx) < len(times):
                    day = pd.Timestamp(int(times[int(idx)]), unit="ms", tz="UTC").date()
                    bad.setdefault(day, []).append(f"{pd.Timestamp(int(times[int(idx)]), unit='ms')}: {text}")
                else:
                    for day in days:
                        bad.setdefault(day, []).append(text)
    out = {}
    for day in days:
        if day in bad:
            out[day] = DayCheck(day, FAILED, f"{len(bad[day])} schema failure(s): " + "; ".join(bad[day][:5]),
                                {"failures": bad[day][:50]})
        else:
            out[day] = DayCheck(day, PASSED, "schema valid")
    return out


def check_duplicates(day: date, frame: pd.DataFrame) -> DayCheck:
    dups = int(frame["open_time"].duplicated().sum()) if not frame.empty else 0
    if dups:
        times = frame.loc[frame["open_time"].duplicated(keep=False), "open_time"].astype(str).unique()
        return DayCheck(day, FAILED, f"{dups} duplicate open time(s)", {"duplicates": list(times[:20])})
    return DayCheck(day, PASSED, "no duplicate open times", {"duplicates": 0})


def check_duplicates_days(days: Sequence[date], frame: pd.DataFrame, times: np.ndarray,
                          per_day: dict[date, pd.DataFrame]) -> dict[date, DayCheck]:
    """`check_duplicates` for every day from one pass over the range's sorted open times; only days
    with a repeated open time are looked at as frames (to name the times)."""
    repeated = times[1:][np.diff(times) == 0]
    bad_days = set((repeated // DAY_MS).tolist())
    return {
        day: check_duplicates(day, per_day[day]) if day_start_ms(day) // DAY_MS in bad_days
        else DayCheck(day, PASSED, "no duplicate open times", {"duplicates": 0})
        for day in days
    }


def ohlc_violations(frame: pd.DataFrame, signed: bool = False) -> pd.Series:
    """Per row, the first broken invariant ('' when none); `signed` (the premium index): ordering only."""
    reasons = pd.Series("", index=frame.index, dtype=object)
    rules = [
        ("low > open/close", frame["low"] > frame[["open", "close"]].min(axis=1)),
        ("high < open/close", frame["high"] < frame[["open", "close"]].max(axis=1)),
        ("low > high", frame["low"] > frame["high"]),
    ]
    if not signed:
        rules += [
            ("price <= 0", frame[["open", "high", "low", "close"]].le(0).any(axis=1)),
            ("negative volume", frame[["volume", "quote_volume"]].lt(0).any(axis=1)),
            ("taker buy > volume", (frame["taker_buy_volume"] > frame["volume"])
             | (frame["taker_buy_quote_volume"] > frame["quote_volume"])),
        ]
    for name, mask in reversed(rules):
        reasons[mask.to_numpy()] = name
    return reasons


def ohlc_broken(frame: pd.DataFrame, signed: bool = False) -> np.ndarray:
    """Per row, whether any OHLC invariant is broken: the same rules as `ohlc_violations`, as plain
    numpy over the whole frame (a symbol-year of 1m bars in one pass instead of 365 pandas passes)."""
    if frame.empty:
        return np.zeros(0, dtype=bool)
    o, h, lo, c = (frame[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    vol, qvol = frame["volume"].to_numpy(dtype=float), frame["quote_volume"].to_numpy(dtype=float)
    broken = (lo > np.minimum(o, c)) | (h < np.maximum(o, c)) | (lo > h)
    if signed:
        return broken
    return (
        broken | (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0) | (vol < 0) | (qvol < 0)
        | (frame["taker_buy_volume"].to_numpy(dtype=float) > vol)
        | (frame["taker_buy_quote_volume"].to_numpy(dtype=float) > qvol)
    )


def check_ohlc_days(days: Sequence[date], frame: pd.DataFrame, signed: bool = False) -> dict[date, DayCheck]:
    """`check_ohlc` for every day of a range from one vectorised pass; only days with a broken bar
    are looked at row by row (to name the bars)."""
    times = open_ms(frame)
    broken = ohlc_broken(frame, signed)
    day_of_row = times // DAY_MS
    rows_per_day = dict(zip(*np.unique(day_of_row, return_counts=True), strict=True))
    bad_days = set(np.unique(day_of_row[broken]).tolist())
    out = {}
    for day in days:
        index = day_start_ms(day) // DAY_MS
        if index in bad_days:
            out[day] = check_ohlc(day, frame.iloc[np.nonzero(day_of_row == index)[0]], signed)
        elif rows_per_day.get(index, 0):
            out[day] = DayCheck(day, PASSED, "OHLC invariants hold", {"violations": 0})
        else:
            out[day] = DayCheck(day, PASSED, "no rows to check", {"violations": 0})
    return out


def check_ohlc(day: date, frame: pd.DataFrame, signed: bool = False) -> DayCheck:
    if frame.empty:
        return DayCheck(day, PASSED, "no rows to check", {"violations": 0})
    reasons = ohlc_violations(frame, signed)
    bad = reasons[reasons != ""]
    if len(bad):
        rows = [f"{frame.loc[i, 'open_time']}: {reason}" for i, reason in bad.head(20).items()]
        return DayCheck(day, FAILED, f"{len(bad)} bar(s) break OHLC invariants", {"violations": rows})
    return DayCheck(day, PASSED, "OHLC invariants hold", {"violations": 0})


# -- continuity ---------------------------------------------------------------------------------------
def check_continuity_days(days: Sequence[date], frame: pd.DataFrame, times: np.ndarray,
                          interval: str) -> dict[date, DayCheck]:
    """The day's first bar follows the previous day's last bar in time and (within a bound) in price, for
    every day of a range from the range's sorted open times (the frame also holds the day before the first)."""
    step = interval_ms(interval)
    opens = frame["open"].to_numpy(dtype=float) if len(frame) else np.empty(0)
    closes = frame["close"].to_numpy(dtype=float) if len(frame) else np.empty(0)

    def find(ms: int) -> int | None:
        i = int(np.searchsorted(times, ms, side="left"))
        return i if i < times.size and int(times[i]) == ms else None

    out = {}
    for day in days:
        start = day_start_ms(day)
        first, last = find(start), find(start - step)
        if first is None or last is None:
            which = "this day's first bar" if first is None else "the previous day's last bar"
            out[day] = DayCheck(day, PASSED, f"not comparable: {which} is not stored", {"compared": False})
            continue
        prev_close, first_open = float(closes[last]), float(opens[first])
        jump = abs(first_open - prev_close) / prev_close if prev_close else 0.0
        meta = {"compared": True, "previous_close": prev_close, "first_open": first_open, "jump": round(jump, 6)}
        if jump > CONTINUITY_MAX_JUMP:
            out[day] = DayCheck(day, FAILED, f"the first open is {jump:.1%} away from the previous day's last "
                                "close", meta)
        else:
            out[day] = DayCheck(day, PASSED, "continuous with the previous day", meta)
    return out


# -- higher intervals agree with 1m -------------------------------------------------------------------
def aggregate_from_1m(minutes: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Bars of `interval` built from complete runs of 1m bars (incomplete buckets are left out)."""
    step = interval_ms(interval)
    if minutes.empty:
        return pd.DataFrame(columns=["open_ms"])
    m = minutes.assign(open_ms=open_ms(minutes)).sort_values("open_ms")
    m["bucket"] = m["open_ms"] // step * step
    grouped = m.groupby("bucket", sort=True)
    agg = pd.DataFrame({
        "open": grouped["open"].first(), "high": grouped["high"].max(), "low": grouped["low"].min(),
        "close": grouped["close"].last(), "volume": grouped["volume"].sum(),
        "quote_volume": grouped["quote_volume"].sum(), "trades_count": grouped["trades_count"].sum(),
        "taker_buy_volume": grouped["taker_buy_volume"].sum(), "n": grouped["open_ms"].count(),
    })
    agg = agg[agg["n"] == step // 60_000].drop(columns="n")
    return agg.rename_axis("open_ms").reset_index()


def check_agrees_with_1m(day: date, frame: pd.DataFrame, minutes: pd.DataFrame, interval: str) -> DayCheck:
    built = aggregate_from_1m(minutes, interval)
    if built.empty or frame.empty:
        return DayCheck(day, PASSED, "not comparable: no complete 1m buckets stored for this day", {"compared": 0})
    stored = frame.assign(open_ms=open_ms(frame))
    joined = stored.merge(built, on="open_ms", suffixes=("", "_1m"))
    if joined.empty:
        return DayCheck(day, PASSED, "not comparable: no bar has all its 1m bars stored", {"compared": 0})
    bad = np.zeros(len(joined), dtype=bool)
    for col in ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume"):
        bad |= ~np.isclose(joined[col].to_numpy(float), joined[f"{col}_1m"].to_numpy(float),
                           rtol=AGGREGATE_RTOL, atol=0.0)
    bad |= joined["trades_count"].to_numpy() != joined["trades_count_1m"].to_numpy()
    meta = {"compared": int(len(joined)), "mismatches": int(bad.sum())}
    if bad.any():
        times = pd.to_datetime(joined.loc[bad, "open_ms"], unit="ms", utc=True).astype(str).tolist()
        meta["mismatched_bars"] = times[:20]
        return DayCheck(day, FAILED, f"{int(bad.sum())} of {len(joined)} bar(s) disagree with their 1m bars", meta)
    return DayCheck(day, PASSED, f"{len(joined)} bar(s) agree with their 1m bars", meta)


# -- the range evaluator of every kline-shaped table ----------------------------------------------------
ROWS, GAPS, CONTINUITY, AGREES_WITH_1M = "rows", "gaps", "continuity", "agrees_with_1m"
# The three row-level checks (schema, duplicates, OHLC invariants) are parts of one check: each part keeps
# its own verdict, named in the result, but a symbol-year writes 365 check results for them, not 1,095.
ROW_PARTS = ("schema", "duplicates", "ohlc")


def kline_check_names(kind: KlineKind, interval: str) -> list[str]:
    """The checks that apply: continuity is meaningless for a signed value near zero (the premium index),
    agreement with 1m is for trade klines above 1m."""
    names = [ROWS, GAPS]
    if not kind.signed_prices:
        names.append(CONTINUITY)
    if kind.is_trade and interval != "1m":
        names.append(AGREES_WITH_1M)
    return names


def _utc(day: date) -> datetime:
    return datetime.fromtimestamp(day_start_ms(day) / 1000, tz=UTC)


def check_kline_days(repo: Any, kind: KlineKind, symbol: str, interval: str, days: Sequence[date],
                     selected: set[str]) -> dict[str, dict[date, DayCheck]]:
    """Every selected check for each day of one symbol, from one read of the range (plus the day before).

    `repo` is a MarketDataRepository; the ledger rows of the days classify their gaps."""
    names = [n for n in kline_check_names(kind, interval) if n in selected]
    first, last = days[0], days[-1]
    frame = repo.get_klines(symbol, interval, _utc(first - timedelta(days=1)), _utc(last + timedelta(days=1)),
                            kind=kind.name)
    times = open_ms(frame)
    if times.size and not bool(np.all(times[1:] >= times[:-1])):
        order = np.argsort(times, kind="stable")
        frame, times = frame.iloc[order], times[order]
    out: dict[str, dict[date, DayCheck]] = {name: {} for name in names}
    per_day: dict[date, pd.DataFrame] = {}
    if ROWS in out or AGREES_WITH_1M in out:
        per_day = split_by_day(frame, [first + timedelta(days=i) for i in range(-1, (last - first).days + 1)])
    if ROWS in out:
        lo = int(np.searchsorted(times, day_start_ms(first), side="left"))
        contiguous = (last - first).days + 1 == len(days)
        day_frames = frame.iloc[lo:] if contiguous else pd.concat([per_day[d] for d in days])
        signed = kind.signed_prices
        schema = check_schema(days, day_frames, interval, f"{symbol} {kind.name} {interval}", signed)
        duplicates = check_duplicates_days(days, frame, times, per_day)
        ohlc = check_ohlc_days(days, frame, signed)
        out[ROWS] = {day: combine_parts(day, {"schema": schema[day], "duplicates": duplicates[day],
                                              "ohlc": ohlc[day]}) for day in days}
    if GAPS in out:
        ledger = {row.day: row for row in repo.get_ledger(kind.dataset, symbol, interval, first, last)}
        bounds = np.searchsorted(times, [day_start_ms(d) + k * DAY_MS for d in days for k in (0, 1)], side="left")
        for i, day in enumerate(days):
            out[GAPS][day] = check_gaps_times(day, times[bounds[2 * i]:bounds[2 * i + 1]], interval, ledger.get(day))
    if CONTINUITY in out:
        out[CONTINUITY] = check_continuity_days(days, frame, times, interval)
    if AGREES_WITH_1M in out:
        minutes = split_by_day(repo.get_klines(symbol, "1m", _utc(first), _utc(last + timedelta(days=1))), list(days))
        out[AGREES_WITH_1M] = {day: check_agrees_with_1m(day, per_day[day], minutes[day], interval) for day in days}
    return out
