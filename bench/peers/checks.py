"""Every tool's output compared with the simulator's truth, bar by bar, after its run (outside the timing).

Why two kinds of comparison: this project and python-binance keep Binance's decimal text, so their rows
must equal the truth's text in all 11 fields; freqtrade and ccxt keep floats of open/high/low/close/volume
only, so theirs must equal the correctly rounded doubles of the truth (a float parser gives exactly those),
and the columns they drop are reported as dropped, not as wrong.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from bench.peers.truth import OHLCV, KlineTruth

EXACT_FIELDS = ("open_time, open, high, low, close, volume, close_time, quote_volume, trades_count, "
                "taker_buy_volume, taker_buy_quote_volume")


@dataclass(frozen=True)
class Check:
    ok: bool
    rows: int
    detail: str

    def __str__(self) -> str:
        return f"{'OK' if self.ok else 'WRONG'} {self.rows:,} rows: {self.detail}"


def _beyond(count: int) -> str:
    return f"; and {count:,} bars outside the requested range" if count else ""


def exact_lines(truth: KlineTruth, lines: list[bytes]) -> Check:
    """Rows as 11 comma-separated fields of exact text, in open-time order (bars outside the range are
    counted, not compared: a tool may keep more than it was asked for)."""
    expected = truth.lines
    inside = [line for line in lines if truth.start_ms <= int(line.split(b",", 1)[0]) < truth.end_ms]
    beyond, lines = len(lines) - len(inside), inside
    if lines == expected:
        return Check(True, len(lines), "every bar equal to the simulator's in all 11 fields (exact text)"
                     + _beyond(beyond))
    want = {line.split(b",", 1)[0]: line for line in expected}
    got = {line.split(b",", 1)[0]: line for line in lines}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differing = [t for t in want.keys() & got.keys() if want[t] != got[t]]
    parts = [f"{len(lines):,} rows for {len(expected):,} bars"]
    if len(got) != len(lines):
        parts.append(f"{len(lines) - len(got):,} duplicate open times")
    if missing:
        parts.append(f"{len(missing):,} bars missing (first {missing[0].decode()})")
    if extra:
        parts.append(f"{len(extra):,} bars not served (first {extra[0].decode()})")
    if differing:
        first = min(differing)
        parts.append(f"{len(differing):,} bars differ (first {got[first].decode()} != {want[first].decode()})")
    if not (missing or extra or differing) and len(got) == len(lines):
        parts.append("same bars, different order")
    return Check(False, len(lines), "; ".join(parts) + _beyond(beyond))


def float_ohlcv(truth: KlineTruth, open_ms: np.ndarray, columns: dict[str, np.ndarray], dropped: str) -> Check:
    """Open times (ms) and float OHLCV columns against the truth's doubles; `dropped` names what is not kept.
    Bars outside the requested range are counted, not compared."""
    open_ms = open_ms.astype(np.int64)
    keep = (open_ms >= truth.start_ms) & (open_ms < truth.end_ms)
    beyond = int(np.count_nonzero(~keep))
    open_ms, columns = open_ms[keep], {c: v[keep] for c, v in columns.items()}
    n = len(open_ms)
    if n != truth.rows or not np.array_equal(open_ms, truth.bars["open_time"]):
        have = set(open_ms.tolist())
        want = set(truth.bars["open_time"].tolist())
        return Check(False, n, f"{n:,} rows for {truth.rows:,} bars: {len(want - have):,} bars missing, "
                               f"{len(have - want):,} not served, {n - len(have):,} duplicates" + _beyond(beyond))
    wrong = {c: int(np.count_nonzero(columns[c] != truth.floats(c))) for c in OHLCV}
    if any(wrong.values()):
        return Check(False, n, "values differ: " + ", ".join(f"{c} {k:,}" for c, k in wrong.items() if k)
                     + _beyond(beyond))
    return Check(True, n, f"every bar's OHLCV equal to the simulator's (as floats); {dropped} not kept"
                 + _beyond(beyond))


# ----- readers: what each tool left behind ---------------------------------------------------------

def pg_lines(database_url: str, symbol: str, start_ms: int, end_ms: int) -> list[bytes]:
    """The project's PostgreSQL rows as exact text (NUMERIC prints the scale it was given)."""
    query = sql.SQL(
        "COPY (SELECT (extract(epoch FROM open_time) * 1000)::bigint, open, high, low, close, volume, "
        "(extract(epoch FROM close_time) * 1000)::bigint, quote_volume, trades_count, taker_buy_volume, "
        "taker_buy_quote_volume FROM kline_data WHERE symbol = {} AND interval = '1m' "
        "AND open_time >= to_timestamp({} / 1000.0) AND open_time < to_timestamp({} / 1000.0) "
        "ORDER BY open_time) TO STDOUT"
    ).format(sql.Literal(symbol), sql.Literal(start_ms), sql.Literal(end_ms))
    out = bytearray()
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn, \
            conn.cursor() as cur, cur.copy(query) as copy:
        for chunk in copy:
            out += chunk
    return bytes(out).replace(b"\t", b",").splitlines()


def sqlite_lines(path: Path, symbol: str, start_ms: int, end_ms: int) -> list[bytes]:
    """The project's SQLite rows (times as epoch ms, decimals as the text Binance sent)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            f"SELECT {EXACT_FIELDS} FROM kline_data WHERE symbol = ? AND interval = '1m' "  # noqa: S608
            "AND open_time >= ? AND open_time < ? ORDER BY open_time", (symbol, start_ms, end_ms)
        ).fetchall()
    return [",".join(map(str, row)).encode() for row in rows]


def csv_lines(path: Path) -> list[bytes]:
    """The project REST client's RawKlines bytes (12 archive fields) as 11-field lines."""
    return [line.rsplit(b",", 1)[0] for line in path.read_bytes().splitlines() if line]


def rest_array_lines(path: Path) -> list[bytes]:
    """python-binance's result: Binance's own 12-item arrays, strings kept as sent."""
    return [",".join(str(v) for v in row[:11]).encode() for row in json.loads(path.read_bytes())]


def ccxt_ohlcv(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ccxt's result: [timestamp, open, high, low, close, volume] with floats."""
    table = np.array(json.loads(path.read_bytes()), dtype=np.float64).reshape(-1, 6)
    return table[:, 0].astype(np.int64), {c: table[:, i + 1] for i, c in enumerate(OHLCV)}


def feather_ohlcv(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """freqtrade's feather file: date (UTC) and five float columns."""
    import pandas as pd

    frame = pd.read_feather(path)
    open_ms = frame["date"].dt.tz_convert("UTC").astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    return open_ms, {c: frame[c].to_numpy(dtype=np.float64) for c in OHLCV}
