"""NOTIFY batching shared by the writer (committed rows) and replay (bus events): every event once, in
order, each payload under PostgreSQL's limit."""

from __future__ import annotations

import orjson

from streaming.events import NOTIFY_LIMIT, NotifyBatch, event_from_row, notify_payloads


def trade(agg_id: int) -> tuple:
    return ("BTCUSDT", agg_id, "58665.00", "0.003", agg_id, agg_id, 1_700_000_000_000 + agg_id, True,
            1_700_000_000_005 + agg_id, "stream")


def events_of(payloads: list[bytes]) -> list[dict]:
    out = []
    for payload in payloads:
        assert len(payload) < NOTIFY_LIMIT
        message = orjson.loads(payload)
        assert message["topic"] == "market_data.trade"
        out += message["events"]
    return out


def test_rows_are_packed_below_the_limit_in_order():
    rows = [trade(i) for i in range(500)]
    payloads = notify_payloads("agg_trades", rows)
    assert len(payloads) > 1
    assert [e["agg_id"] for e in events_of(payloads)] == list(range(500))


def test_events_added_one_by_one_give_the_same_payloads():
    rows = [trade(i) for i in range(500)]
    batch = NotifyBatch("market_data.trade")
    pushed = [p for row in rows if (p := batch.add(event_from_row("agg_trades", row))) is not None]
    assert [*pushed, batch.take()] == notify_payloads("agg_trades", rows)
    assert batch.take() is None


def test_an_event_too_large_for_notify_is_skipped_and_unknown_kinds_give_nothing():
    batch = NotifyBatch("market_data.depth")
    assert batch.add({"bids": "x" * NOTIFY_LIMIT}) is None and batch.take() is None
    assert notify_payloads("gaps", [("BTCUSDT",)]) == []
