"""Aggregate trades as exact CSV text in the archive layout, checked and normalised once.

`AggTradeBatch.csv` is header-less `agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,
is_buyer_maker` lines, sorted by id with no id twice: what PostgreSQL COPYs as it is. Parsing only pulls
the ids and times into numpy (the decimals stay text), so a 1.5-million-row day costs well under a second.

Bad input (issue 5): a changed column layout or a malformed row is an `AggTradesFormatError` naming the
file and line; rows out of order are sorted and exact duplicates dropped, both recorded in `corrections`
(reported in run metadata); two different rows with one id, or a row outside the file's day, are errors.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marketdata_assets.binance.errors import PayloadFormatError

HEADER = b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
FIELDS = 7


class AggTradesFormatError(PayloadFormatError):
    """Aggregate-trade data whose layout or content is not Binance's (names the input)."""


@dataclass
class AggTradeBatch:
    symbol: str
    source: str
    csv: bytes = field(repr=False)
    ids: np.ndarray = field(repr=False)
    times: np.ndarray = field(repr=False)
    corrections: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.ids.size)


def _columns(body: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body), header=None, usecols=[0, 5], dtype="int64", engine="c",
                            names=range(FIELDS))
    except (ValueError, pd.errors.ParserError) as exc:
        raise AggTradesFormatError(f"{name}: not aggTrades rows: {exc}") from None
    return frame[0].to_numpy(), frame[5].to_numpy()


def parse_agg_trades_csv(data: bytes, symbol: str, *, source: str = "archive", name: str = "aggTrades",
                         day_range: tuple[int, int] | None = None) -> AggTradeBatch:
    """Check and normalise an archive aggTrades CSV (header optional, CRLF accepted, µs times to ms)."""
    body = data.replace(b"\r\n", b"\n")
    first_line = body[: body.find(b"\n")] if b"\n" in body else body
    if first_line and not first_line[:1].isdigit():
        if first_line.strip() != HEADER:
            raise AggTradesFormatError(
                f"{name}: unexpected header {first_line[:200].decode(errors='replace')!r}: expected "
                f"{HEADER.decode()} (the column layout changed)")
        body = body[len(first_line) + 1:]
    body = body.strip(b"\n")
    if not body:
        empty = np.empty(0, dtype=np.int64)
        return AggTradeBatch(symbol, source, b"", empty, empty)
    body += b"\n"
    lines = body.count(b"\n")
    if body.count(b",") != (FIELDS - 1) * lines:
        bad = next(i for i, line in enumerate(body.split(b"\n"), start=1) if line.count(b",") != FIELDS - 1)
        raise AggTradesFormatError(f"{name} line {bad}: expected {FIELDS} fields (the column layout changed)")
    ids, times = _columns(body, name)
    if times.size and times.max() > 10**14:  # µs (SPEC C.3: 2025 files may carry 16-digit times)
        raise AggTradesFormatError(f"{name}: microsecond transact_time is not supported yet")
    corrections: list[str] = []
    steps = np.diff(ids)
    if steps.size and not bool((steps > 0).all()):
        body, ids, times, corrections = _sort_and_deduplicate(body, ids, times, name)
    if day_range is not None:
        outside = (times < day_range[0]) | (times >= day_range[1])
        if outside.any():
            at = int(np.flatnonzero(outside)[0])
            raise AggTradesFormatError(
                f"{name}: {int(outside.sum())} row(s) outside the file's day, e.g. agg_trade_id {int(ids[at])} "
                f"at transact_time {int(times[at])}")
    return AggTradeBatch(symbol, source, body, ids, times, corrections)


def _sort_and_deduplicate(body: bytes, ids: np.ndarray, times: np.ndarray,
                          name: str) -> tuple[bytes, np.ndarray, np.ndarray, list[str]]:
    """The documented correction: sort by id, drop exact duplicate rows; conflicting duplicates fail."""
    lines = body.split(b"\n")[:-1]
    order = np.argsort(ids, kind="stable")
    unsorted = int((np.diff(ids) < 0).sum())
    ids, times = ids[order], times[order]
    lines = [lines[i] for i in order]
    keep = np.ones(ids.size, dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    notes = []
    if unsorted:
        notes.append(f"{name}: rows out of id order ({unsorted} descent(s)): sorted by agg_trade_id")
    dropped = int((~keep).sum())
    if dropped:
        for i in np.flatnonzero(~keep):
            if lines[i] != lines[i - 1]:
                raise AggTradesFormatError(f"{name}: agg_trade_id {int(ids[i])} appears twice with different "
                                           f"values: {lines[i - 1]!r} vs {lines[i]!r}")
        shown = ", ".join(str(int(i)) for i in ids[~keep][:10])
        notes.append(f"{name}: {dropped} exact duplicate row(s) dropped (agg_trade_id {shown})")
        lines = [line for line, k in zip(lines, keep, strict=True) if k]
        ids, times = ids[keep], times[keep]
    return b"\n".join(lines) + b"\n", ids, times, notes


def rest_agg_trades_csv(rows: Iterable[Mapping[str, Any]], symbol: str) -> AggTradeBatch:
    """REST aggTrades objects ({"a","p","q","f","l","T","m"}) as a batch in the archive layout."""
    ordered = sorted({int(r["a"]): r for r in rows}.items())
    lines = [f"{a},{r['p']},{r['q']},{int(r['f'])},{int(r['l'])},{int(r['T'])},{'true' if r['m'] else 'false'}"
             for a, r in ordered]
    csv = ("\n".join(lines) + "\n").encode("ascii") if lines else b""
    ids = np.fromiter((a for a, _ in ordered), dtype=np.int64, count=len(ordered))
    times = np.fromiter((int(r["T"]) for _, r in ordered), dtype=np.int64, count=len(ordered))
    return AggTradeBatch(symbol, "rest", csv, ids, times)


def id_holes(ids: np.ndarray, first: int | None = None, last: int | None = None) -> list[tuple[int, int]]:
    """Missing ids as inclusive (from, to) ranges, within [first, last] (default: the ids' own span)."""
    holes: list[tuple[int, int]] = []
    if ids.size == 0:
        return [(first, last)] if first is not None and last is not None and first <= last else []
    lo = int(ids[0]) if first is None else first
    hi = int(ids[-1]) if last is None else last
    if int(ids[0]) > lo:
        holes.append((lo, int(ids[0]) - 1))
    steps = np.diff(ids)
    for i in np.flatnonzero(steps > 1):
        holes.append((int(ids[i]) + 1, int(ids[i + 1]) - 1))
    if int(ids[-1]) < hi:
        holes.append((int(ids[-1]) + 1, hi))
    return holes
