"""Typed WebSocket payloads (SPEC B.4) decoded with msgspec straight from the wire bytes.

Why msgspec: it validates and builds the structs in one C pass (about 150k msg/s here, PERFORMANCE.md),
and a tagged union on Binance's own `e` field picks the struct without a second parse. Field names keep
Binance's one-letter keys on the wire (`name=`) and readable names in Python. Structs holding only
scalars are `gc=False`: the busiest messages never enter the cycle collector's generations. Prices and quantities stay
the decimal strings Binance sent, so nothing is rounded on the way to NUMERIC columns.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson


class AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade", frozen=True, gc=False):
    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    agg_id: int = msgspec.field(name="a")
    price: str = msgspec.field(name="p")
    quantity: str = msgspec.field(name="q")
    first_trade_id: int = msgspec.field(name="f")
    last_trade_id: int = msgspec.field(name="l")
    trade_time: int = msgspec.field(name="T")
    is_buyer_maker: bool = msgspec.field(name="m")


class KlineBar(msgspec.Struct, frozen=True, gc=False):
    open_time: int = msgspec.field(name="t")
    close_time: int = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    interval: str = msgspec.field(name="i")
    first_trade_id: int = msgspec.field(name="f")
    last_trade_id: int = msgspec.field(name="L")
    open: str = msgspec.field(name="o")
    close: str = msgspec.field(name="c")
    high: str = msgspec.field(name="h")
    low: str = msgspec.field(name="l")
    volume: str = msgspec.field(name="v")
    trades: int = msgspec.field(name="n")
    closed: bool = msgspec.field(name="x")
    quote_volume: str = msgspec.field(name="q")
    taker_buy_volume: str = msgspec.field(name="V")
    taker_buy_quote_volume: str = msgspec.field(name="Q")
    ignore: str = msgspec.field(default="0", name="B")

    def as_binance(self) -> dict[str, Any]:
        """The `k` object with Binance's keys, as `raw_klines_from_stream` reads it."""
        return msgspec.to_builtins(self)


class KlineEvent(msgspec.Struct, tag_field="e", tag="kline", frozen=True):
    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    bar: KlineBar = msgspec.field(name="k")


class DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate", frozen=True):
    event_time: int = msgspec.field(name="E")
    transaction_time: int = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    first_update_id: int = msgspec.field(name="U")
    final_update_id: int = msgspec.field(name="u")
    prev_final_update_id: int = msgspec.field(name="pu")
    bids: list[tuple[str, str]] = msgspec.field(name="b")
    asks: list[tuple[str, str]] = msgspec.field(name="a")


class MarkPrice(msgspec.Struct, gc=False, tag_field="e", tag="markPriceUpdate", frozen=True):
    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    mark_price: str = msgspec.field(name="p")
    index_price: str = msgspec.field(default="", name="i")
    estimated_settle_price: str = msgspec.field(default="", name="P")
    funding_rate: str = msgspec.field(default="", name="r")  # "" for delivery contracts (SPEC B.4)
    next_funding_time: int = msgspec.field(default=0, name="T")


class Ticker24h(msgspec.Struct, gc=False, tag_field="e", tag="24hrTicker", frozen=True):
    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    price_change: str = msgspec.field(name="p")
    price_change_percent: str = msgspec.field(name="P")
    weighted_avg_price: str = msgspec.field(name="w")
    last_price: str = msgspec.field(name="c")
    last_qty: str = msgspec.field(name="Q")
    open_price: str = msgspec.field(name="o")
    high_price: str = msgspec.field(name="h")
    low_price: str = msgspec.field(name="l")
    volume: str = msgspec.field(name="v")
    quote_volume: str = msgspec.field(name="q")
    open_time: int = msgspec.field(name="O")
    close_time: int = msgspec.field(name="C")
    first_id: int = msgspec.field(name="F")
    last_id: int = msgspec.field(name="L")
    count: int = msgspec.field(name="n")


class BookTicker(msgspec.Struct, gc=False, tag_field="e", tag="bookTicker", frozen=True):
    update_id: int = msgspec.field(name="u")
    symbol: str = msgspec.field(name="s")
    bid_price: str = msgspec.field(name="b")
    bid_qty: str = msgspec.field(name="B")
    ask_price: str = msgspec.field(name="a")
    ask_qty: str = msgspec.field(name="A")
    transaction_time: int = msgspec.field(name="T")
    event_time: int = msgspec.field(name="E")


Event = AggTrade | KlineEvent | DepthUpdate | MarkPrice | Ticker24h | BookTicker


class Envelope(msgspec.Struct, frozen=True):
    """The combined-stream wrapper `{"stream": ..., "data": ...}`; `!...@arr` streams carry a list."""

    stream: str
    data: Event | list[MarkPrice | Ticker24h]


class Control(msgspec.Struct, frozen=True):
    """A reply to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, or an error (SPEC B.3)."""

    id: int | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    code: int | None = None
    msg: str | None = None


class MalformedFrame(ValueError):
    """A frame that is neither a known stream payload nor a control reply; carries a short sample."""

    def __init__(self, reason: str, frame: bytes | str) -> None:
        raw = frame.encode() if isinstance(frame, str) else frame
        self.sample = raw[:200]
        super().__init__(f"{reason}: {self.sample!r}")


_envelope = msgspec.json.Decoder(Envelope)
_raw_event = msgspec.json.Decoder(Event)
_control = msgspec.json.Decoder(Control)


def decode_frame(frame: bytes | str) -> Envelope | Control:
    """One WebSocket text frame -> Envelope (data) or Control (ack / error).

    Raises MalformedFrame for invalid JSON, an unknown event type, or a payload missing fields: the
    caller counts and skips it, the stream keeps going.
    """
    try:
        return _envelope.decode(frame)
    except msgspec.DecodeError as exc:
        envelope_error = exc
    # Rare path: control replies and anything unexpected. Classify with a generic parse.
    try:
        parsed = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise MalformedFrame("invalid JSON", frame) from None
    if isinstance(parsed, dict) and "stream" not in parsed and (
        "result" in parsed or "error" in parsed or "code" in parsed
    ):
        try:
            return _control.decode(frame)
        except msgspec.DecodeError as exc:
            raise MalformedFrame(f"bad control reply ({exc})", frame) from None
    raise MalformedFrame(f"unexpected payload ({envelope_error})", frame)


def decode_event(payload: bytes | str) -> Event:
    """A raw (`/ws/<stream>`, unwrapped) payload -> its struct; MalformedFrame when unknown."""
    try:
        return _raw_event.decode(payload)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(f"unexpected payload ({exc})", payload) from None
