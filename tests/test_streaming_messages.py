"""Decoding every real WebSocket sample into typed structs; bad frames are classified, never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketdata_assets.binance.klines import raw_klines_from_stream
from streaming.messages import (
    AggTrade,
    BookTicker,
    Control,
    DepthUpdate,
    Envelope,
    KlineEvent,
    MalformedFrame,
    MarkPrice,
    Ticker24h,
    decode_event,
    decode_frame,
)
from tests.support.samples import SAMPLES as SAMPLES_ROOT

WS = SAMPLES_ROOT / "ws"
EXPECTED = {
    "aggTrade": AggTrade, "kline": KlineEvent, "depth": DepthUpdate, "markPrice": MarkPrice,
    "ticker": Ticker24h, "bookTicker": BookTicker,
}


def _frames(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def _expected_type(stream: str) -> type:
    suffix = stream.lstrip("!").split("@", 1)[1] if not stream.startswith("!") else stream[1:]
    for key, kind in EXPECTED.items():
        if suffix.startswith(key):
            return kind
    raise AssertionError(stream)


WRAPPED = sorted(p for p in WS.iterdir() if p.name.startswith(("combined_", "cryptomsgparser_")))


@pytest.mark.parametrize("path", WRAPPED, ids=lambda p: p.name)
def test_every_real_combined_sample_decodes_to_its_type(path):
    frames = _frames(path)
    assert frames
    for frame in frames:
        envelope = decode_frame(frame)
        assert isinstance(envelope, Envelope)
        kind = _expected_type(envelope.stream)
        items = envelope.data if isinstance(envelope.data, list) else [envelope.data]
        for item in items:
            assert isinstance(item, kind)
            assert item.symbol.lower() in envelope.stream or envelope.stream.startswith("!")
            assert item.event_time > 1_500_000_000_000


def test_real_aggtrade_fields():
    frame = decode_frame(_frames(WS / "cryptomsgparser_trade_linear_swap_L113.json")[0])
    trade = frame.data
    assert (trade.agg_id, trade.price, trade.quantity, trade.first_trade_id, trade.trade_time) == (
        389551486, "58665.00", "0.043", 621622993, 1616202009188)
    assert trade.is_buyer_maker is False


def test_real_closed_kline_converts_through_the_shared_helper():
    frame = decode_frame(_frames(WS / "combined_kline_1m_closed_2021-07-22_cryptofeed.jsonl")[0])
    bar = frame.data.bar
    assert bar.closed
    raw = raw_klines_from_stream([bar.as_binance()], frame.data.symbol, bar.interval)
    assert raw.source == "stream"
    assert raw.csv == (b"1626992700000,7.6080,7.6180,7.6070,7.6170,3005,1626992759999,"
                       b"22875.8590,113,1900,14464.6960,0\n")


def test_mark_price_with_funding_and_delivery_defaults():
    mark = decode_frame(_frames(WS / "combined_markPrice1s_EOSUSDT_2021-03-24_real.json")[0]).data
    assert (mark.mark_price, mark.funding_rate, mark.next_funding_time) == ("4.11998561", "0.00030438",
                                                                            1616572800000)
    doc = decode_event(_frames(WS / "markPrice_DOC_EXAMPLE_2026_with_ap.json")[0])
    assert isinstance(doc, MarkPrice) and doc.index_price == "11784.62659091"


def test_raw_payloads_with_new_fields_decode():
    trade = decode_event(_frames(WS / "aggTrade_DOC_EXAMPLE_2026_with_nq.json")[0])
    assert isinstance(trade, AggTrade) and trade.agg_id == 5933014


@pytest.mark.parametrize("name", ["error_invalid_stream_real_ccxt_pr19833.json", "error_invalid_json_DOC.json"])
def test_error_replies_are_control_frames(name):
    reply = decode_frame(_frames(WS / name)[0])
    assert isinstance(reply, Control)
    assert reply.code == 2 or reply.error["code"] == 3


def test_subscription_acks_are_control_frames_in_any_key_order():
    acks = [decode_frame(f) for f in _frames(WS / "subscribe_request_and_ack_DOC.jsonl") if b"result" in f]
    assert [a.id for a in acks] == [1, 312, 3]
    assert decode_frame(b'{"id":7,"result":null}').id == 7


@pytest.mark.parametrize("frame", [
    b"not json",
    b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1}}',         # fields missing
    b'{"stream":"btcusdt@aggTrade","data":{"e":"mystery","E":1,"s":"X"}}',  # unknown event type
    b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":"soon","s":"X","a":1,"p":"1","q":"1",'
    b'"f":1,"l":1,"T":1,"m":true}}',                                          # wrong type
    b"[1,2,3]",
], ids=["invalid-json", "missing-fields", "unknown-event", "wrong-type", "array"])
def test_malformed_frames_raise_with_a_sample(frame):
    with pytest.raises(MalformedFrame) as info:
        decode_frame(frame)
    assert info.value.sample == frame[:200]


def test_unsupported_real_payload_types_are_malformed_not_crashes():
    for name in ("forceOrder_DOC_EXAMPLE.json", "trade_raw_BTCUSDT_2023-03-26_JKorf_issue1218.json"):
        with pytest.raises(MalformedFrame):
            decode_event(_frames(WS / name)[0])
