"""Stream names, their route (/market or /public), and how long each may normally stay silent.

Why routes: since 2026 Binance only delivers market streams (klines, aggTrade, markPrice, tickers) on
`/market` and book streams on `/public`; a market stream on the wrong route is ACKed and then silent
forever (SPEC B.1). Why per-stream silence thresholds: a markPrice@1s stream that is quiet for 5 s is
dead, an aggTrade stream of an illiquid symbol that is quiet for a minute is normal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from marketdata_assets.binance.intervals import (
    InvalidInputError,
    interval_ms,
    validate_interval,
    validate_symbol,
)

MAX_STREAMS_PER_CONNECTION = 1024  # SPEC B.2 (was 200 before 2025-07-02)

# data type -> stream suffix; "kline" takes the interval.
DATA_TYPES = ("kline", "trade", "depth", "price", "ticker")
# Aliases users may type; each maps to a canonical data type.
_ALIASES = {
    "klines": "kline", "candles": "kline", "trades": "trade", "aggtrade": "trade", "agg_trade": "trade",
    "orderbook": "depth", "book": "depth", "mark_price": "price", "markprice": "price", "funding": "price",
    "tickers": "ticker",
}

PUBLIC_SUFFIXES = ("@depth", "@bookTicker")  # SPEC B.1: book streams are on /public


@dataclass(frozen=True)
class StreamSpec:
    """One subscribed stream: its wire name, symbol, data type and route."""

    name: str
    symbol: str
    data_type: str
    interval: str | None = None

    @property
    def route(self) -> str:
        return route_of(self.name)


def canonical_data_type(data_type: str) -> str:
    key = data_type.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATA_TYPES:
        raise InvalidInputError(f"unknown data type {data_type!r}: expected one of {', '.join(DATA_TYPES)}")
    return key


def route_of(stream: str) -> str:
    """'/public' for book streams, '/market' for everything else (SPEC B.1)."""
    _, _, suffix = stream.partition("@")
    return "/public" if ("@" + suffix).startswith(PUBLIC_SUFFIXES) else "/market"


def stream_spec(symbol: str, data_type: str, interval: str = "1m") -> StreamSpec:
    """The stream for one symbol and data type, validated."""
    symbol = validate_symbol(symbol.upper())
    kind = canonical_data_type(data_type)
    low = symbol.lower()
    if kind == "kline":
        validate_interval(interval)
        return StreamSpec(f"{low}@kline_{interval}", symbol, kind, interval)
    suffix = {
        "trade": "aggTrade", "depth": "depth@100ms", "price": "markPrice@1s",
        "ticker": "ticker",
    }[kind]
    return StreamSpec(f"{low}@{suffix}", symbol, kind)


def specs_for(symbols: Iterable[str], data_types: Iterable[str], interval: str = "1m") -> list[StreamSpec]:
    """Every (symbol, data type) stream, without duplicates, in a stable order."""
    seen: dict[str, StreamSpec] = {}
    for symbol in symbols:
        for kind in data_types:
            spec = stream_spec(symbol, kind, interval)
            seen.setdefault(spec.name, spec)
    return list(seen.values())


def group_by_route(specs: Sequence[StreamSpec], limit: int = MAX_STREAMS_PER_CONNECTION
                   ) -> list[tuple[str, list[StreamSpec]]]:
    """Connections to open: (route, streams), each route split into chunks of at most `limit` streams."""
    if not 1 <= limit <= MAX_STREAMS_PER_CONNECTION:
        raise InvalidInputError(f"streams per connection must be 1..{MAX_STREAMS_PER_CONNECTION}, got {limit}")
    by_route: dict[str, list[StreamSpec]] = {}
    for spec in specs:
        by_route.setdefault(spec.route, []).append(spec)
    groups: list[tuple[str, list[StreamSpec]]] = []
    for route in sorted(by_route):
        items = by_route[route]
        for start in range(0, len(items), limit):
            groups.append((route, items[start:start + limit]))
    return groups


def combined_url(ws_url: str, route: str, streams: Sequence[str]) -> str:
    """`<base><route>/stream?streams=a/b/c` (stream names are lower-case ASCII; no escaping needed)."""
    return f"{ws_url.rstrip('/')}{route}/stream?streams={'/'.join(streams)}"


# Normal maximum silence per data type, in seconds (the stream pushes at least this often when healthy).
# `guaranteed` streams push on a clock whatever the market does; their silence means the connection is dead.
@dataclass(frozen=True)
class SilencePolicy:
    price: float = 5.0         # markPrice@1s pushes every second
    ticker: float = 10.0       # @ticker pushes every 2 s
    kline: float = 15.0        # plus the interval: the closing bar always comes (0.2-2 s after T, SPEC B.4)
    depth: float = 30.0        # @depth@100ms only when the book changes
    book_ticker: float = 30.0  # real time, only on change
    trade: float = 60.0        # only when someone trades

    GUARANTEED = ("price", "ticker", "kline")

    def threshold(self, spec: StreamSpec) -> float:
        base = getattr(self, spec.data_type)
        if spec.data_type == "kline" and spec.interval:
            return base + interval_ms(spec.interval) / 1000
        return base

    def scaled(self, factor: float) -> SilencePolicy:
        """All thresholds multiplied (tests run with tiny ones)."""
        return SilencePolicy(**{k: getattr(self, k) * factor for k in (
            "price", "ticker", "kline", "depth", "book_ticker", "trade")})


def connection_silence_limit(specs: Sequence[StreamSpec], policy: SilencePolicy) -> float:
    """How long a whole connection may be silent: the tightest threshold of its streams."""
    return min(policy.threshold(s) for s in specs)
