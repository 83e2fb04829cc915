"""Stream names of Binance USD-M market streams: grammar, kind and route (SPEC B.1, B.3, B.4).

Why a grammar: Binance answers a *malformed* name with error code 2 ("invalid stream") but ACKs a
well-formed name for a symbol it does not list and then stays silent. The simulator must draw the same
line, so every name is parsed here once and classified (which route delivers it, which feed makes it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Stream kline intervals (SPEC B.4: 1m .. 1M; no 1s on the stream).
STREAM_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")

MARKET = "market"
PUBLIC = "public"

_SYM = r"[a-z0-9]{2,30}(?:_[0-9]{6})?"
_INTERVALS = "|".join(re.escape(i) for i in STREAM_INTERVALS)

# (regex, kind, route); the kind is what the feed knows how to produce (or "silent" for well-formed
# streams the simulator does not model: they are ACKed and never deliver, which is a legal Binance answer).
_PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(rx), kind, route)
    for rx, kind, route in (
        (rf"^(?P<sym>{_SYM})@aggTrade$", "aggTrade", MARKET),
        (rf"^(?P<sym>{_SYM})@trade$", "silent", PUBLIC),
        (rf"^(?P<sym>{_SYM})@markPrice(?P<speed>@1s)?$", "markPrice", MARKET),
        (r"^!markPrice@arr(?P<speed>@1s)?$", "markPriceArr", MARKET),
        (rf"^(?P<sym>{_SYM})@kline_(?P<interval>{_INTERVALS})$", "kline", MARKET),
        (rf"^(?P<sym>[a-z0-9]{{2,30}})_(?:perpetual|current_quarter|next_quarter|tradifi_perpetual)"
         rf"@continuousKline_(?:{_INTERVALS})$", "silent", MARKET),
        (rf"^(?P<sym>{_SYM})@miniTicker$", "miniTicker", MARKET),
        (r"^!miniTicker@arr$", "silent", MARKET),
        (rf"^(?P<sym>{_SYM})@ticker$", "ticker", MARKET),
        (r"^!ticker@arr$", "silent", MARKET),
        (rf"^(?P<sym>{_SYM})@forceOrder$", "silent", MARKET),
        (r"^!forceOrder@arr$", "silent", MARKET),
        (rf"^(?P<sym>{_SYM})@compositeIndex$", "silent", MARKET),
        (r"^!contractInfo$", "silent", MARKET),
        (r"^!assetIndex@arr$", "silent", MARKET),
        (r"^tradingSession$", "silent", MARKET),
        (rf"^(?P<sym>{_SYM})@bookTicker$", "bookTicker", PUBLIC),
        (r"^!bookTicker$", "silent", PUBLIC),
        (rf"^(?P<sym>{_SYM})@depth(?P<speed>@100ms|@500ms)?$", "depth", PUBLIC),
        (rf"^(?P<sym>{_SYM})@depth(?P<levels>5|10|20)(?P<speed>@100ms|@500ms)?$", "partialDepth", PUBLIC),
        (rf"^(?P<sym>{_SYM})@rpiDepth@500ms$", "silent", PUBLIC),
    )
)

# Update period in market milliseconds per kind (SPEC B.4); depth/markPrice depend on the suffix.
_PERIOD_MS = {"aggTrade": 100, "kline": 250, "ticker": 2000, "miniTicker": 2000, "bookTicker": 100}


class InvalidStreamError(ValueError):
    """A malformed stream name (Binance: {"code":2,"msg":"Invalid request: invalid stream"})."""


@dataclass(frozen=True)
class StreamName:
    """One parsed stream name; `name` is exactly what the client sent (it keys LIST_SUBSCRIPTIONS)."""

    name: str
    kind: str
    route: str
    symbol: str | None = None  # upper case, as in payloads ("BTCUSDT")
    interval: str | None = None
    levels: int | None = None
    period_ms: int = 1000

    @property
    def delivers(self) -> bool:
        return self.kind != "silent"


def parse_stream(name: object) -> StreamName:
    """Parse a stream name or raise InvalidStreamError naming it."""
    if not isinstance(name, str):
        raise InvalidStreamError(f"stream name must be a string, got {name!r}")
    for rx, kind, route in _PATTERNS:
        m = rx.match(name)
        if m is None:
            continue
        groups = m.groupdict()
        sym = groups.get("sym")
        speed = groups.get("speed")
        if kind in ("depth", "partialDepth"):
            period = {"@100ms": 100, "@500ms": 500}.get(speed or "", 250)
        elif kind in ("markPrice", "markPriceArr"):
            period = 1000 if speed else 3000
        else:
            period = _PERIOD_MS.get(kind, 1000)
        return StreamName(
            name=name,
            kind=kind,
            route=route,
            symbol=sym.upper() if sym else None,
            interval=groups.get("interval"),
            levels=int(groups["levels"]) if groups.get("levels") else None,
            period_ms=period,
        )
    raise InvalidStreamError(f"invalid stream name {name!r}")


def route_delivers(route: str, stream: StreamName) -> bool:
    """Whether a connection on `route` receives data of `stream` (SPEC B.1: else ACKed but silent).

    Legacy unrouted paths (/ws, /stream) behave as /public since the 2026 split.
    """
    effective = PUBLIC if route == "legacy" else route
    return stream.delivers and stream.route == effective
