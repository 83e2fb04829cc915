"""Checks on RawKlines text before it reaches a database, so bad input fails with a message naming it.

PostgreSQL parses every field into NUMERIC/BIGINT during COPY (and rejects malformed numbers itself), so
it only needs the cheap character check that keeps out NaN/Infinity/exponents. SQLite stores decimal text
as it comes, so it gets the full per-line pattern.
"""

from __future__ import annotations

import re

from marketdata_assets.binance.intervals import ALL_REST_INTERVALS, InvalidInputError, validate_symbol
from marketdata_assets.binance.klines import KlineFormatError, RawKlines

_DEC = rb"-?[0-9]+(?:\.[0-9]+)?"
_INT = rb"-?[0-9]+"
# open_time, open, high, low, close, volume, close_time, quote_volume, count, tbv, tbqv, ignore
_LINE = (
    _INT + rb"," + (_DEC + rb",") * 5 + _INT + rb"," + _DEC + rb"," + _INT + rb","
    + _DEC + rb"," + _DEC + rb",[0-9.]*"
)
_ALL_LINES = re.compile(rb"(?:" + _LINE + rb"\n)*+")
_BAD_LINE = re.compile(rb"(?m)^(?!" + _LINE + rb"$).*$")
_ALLOWED_BYTES = b"0123456789.,-\n"


def describe(raw: RawKlines) -> str:
    return f"{raw.source} klines {raw.symbol} {raw.interval}"


def check_labels(raw: RawKlines) -> None:
    """Symbol and interval of a batch are what the tables and the grid expect."""
    validate_symbol(raw.symbol)
    if raw.interval not in ALL_REST_INTERVALS:
        raise InvalidInputError(
            f"{describe(raw)}: unknown interval {raw.interval!r}: expected one of {', '.join(ALL_REST_INTERVALS)}"
        )


def normalised_body(raw: RawKlines) -> bytes:
    """The CSV bytes ending in exactly one newline per row (no blank lines)."""
    body = raw.csv
    if not body:
        return b""
    if not body.endswith(b"\n"):
        body += b"\n"
    if b"\n\n" in body or body.startswith(b"\n"):
        body = b"".join(line + b"\n" for line in body.split(b"\n") if line)
    return body


def check_characters(raw: RawKlines, body: bytes) -> None:
    """Only digits, '.', ',', '-' and newlines: no NaN, Infinity, exponents, quotes or CR."""
    extra = body.translate(None, _ALLOWED_BYTES)
    if extra:
        _raise_first_bad_line(raw, body, f"unexpected characters {sorted(set(extra.decode('latin-1')))}")


def check_lines(raw: RawKlines, body: bytes) -> None:
    """Every line is 12 fields of integers and plain decimals in the archive layout."""
    if _ALL_LINES.fullmatch(body) is None:
        _raise_first_bad_line(raw, body, "malformed kline row")


def _raise_first_bad_line(raw: RawKlines, body: bytes, reason: str) -> None:
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line and _BAD_LINE.fullmatch(line):
            raise KlineFormatError(f"{describe(raw)} line {number}: {reason}: {line[:160]!r}")
    raise KlineFormatError(f"{describe(raw)}: {reason}")
