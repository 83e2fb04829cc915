"""The simulator's WebSocket protocol (SPEC B.1-B.3): routes, wrapping, (un)subscribe, errors, limits, faults.

Real sockets on loopback with the `websockets` client. Nothing sleeps to synchronise: every wait is for a
message (or a close) with a timeout. Silence is shown by a delivering stream on the same connection: once
it has produced several messages, the silent one had the same time to speak and did not.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from marketdata_sim.server import SimServer
from tests.support.samples import SAMPLES as SAMPLES_ROOT
from tests.support.sim import WS_NOW, connect

SAMPLES = SAMPLES_ROOT / "ws"
NOW = WS_NOW
TIMEOUT = 10.0


def control(server: SimServer, action: str, **body: object) -> object:
    r = httpx.post(f"{server.url}/_sim/ws/{action}", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 60))


async def request(ws, method: str, rid: int, params: list | None = None) -> dict:  # noqa: ANN001
    msg: dict = {"method": method, "id": rid}
    if params is not None:
        msg["params"] = params
    await ws.send(json.dumps(msg))
    return await reply_to(ws, rid)


async def reply_to(ws, rid: int | None) -> dict:  # noqa: ANN001
    """The next control reply with this id (data frames in between are skipped)."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if isinstance(msg, dict) and ("result" in msg or "error" in msg) and msg.get("id") == rid:
            return msg


async def collect(ws, count: int, key=lambda m: True) -> list:  # noqa: ANN001, ANN202
    """`count` decoded data messages matching `key` (all others are kept too, in order)."""
    seen: list = []
    hits = 0
    while hits < count:
        msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        seen.append(msg)
        hits += bool(key(msg))
    return seen


def stream_of(msg: dict) -> str | None:
    return msg.get("stream")


# ----- routes and wrapping ---------------------------------------------------------------------------
def test_combined_route_wraps_and_raw_route_does_not(srv: SimServer) -> None:
    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade") as c, \
                connect(f"{srv.ws_url}/market/ws/btcusdt@aggTrade/ethusdt@aggTrade") as r:
            control(srv, "clock", speed=30)
            wrapped = await collect(c, 20)
            raw = await collect(r, 20)
        assert {m["stream"] for m in wrapped} == {"btcusdt@aggTrade", "ethusdt@aggTrade"}
        assert all(set(m) == {"stream", "data"} and m["data"]["e"] == "aggTrade" for m in wrapped)
        assert all(m["data"]["s"] == m["stream"].split("@")[0].upper() for m in wrapped)
        assert all(m["e"] == "aggTrade" and "stream" not in m for m in raw)

    run(go())


def test_market_streams_on_public_and_legacy_routes_are_acked_but_silent(srv: SimServer) -> None:
    async def go() -> None:
        for path in ("/public/stream", "/stream"):
            async with connect(f"{srv.ws_url}{path}") as ws:
                ack = await request(ws, "SUBSCRIBE", 7, ["btcusdt@aggTrade", "btcusdt@kline_1m",
                                                         "btcusdt@bookTicker"])
                assert ack == {"result": None, "id": 7}
                control(srv, "clock", speed=30)
                msgs = await collect(ws, 15, key=lambda m: stream_of(m) == "btcusdt@bookTicker")
                assert {stream_of(m) for m in msgs} == {"btcusdt@bookTicker"}
                control(srv, "clock", speed=None)
        # and the other way round: a /public stream on /market is silent too
        async with connect(f"{srv.ws_url}/market/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade") as ws:
            control(srv, "clock", speed=30)
            msgs = await collect(ws, 15)
            assert {stream_of(m) for m in msgs} == {"btcusdt@aggTrade"}

    run(go())


def test_unknown_but_well_formed_symbol_is_acked_and_silent(srv: SimServer) -> None:
    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/stream") as ws:
            ack = await request(ws, "SUBSCRIBE", 1, ["nosuchusdt@aggTrade", "btcusdt@aggTrade"])
            assert ack == {"result": None, "id": 1}
            control(srv, "clock", speed=30)
            msgs = await collect(ws, 30)
            assert {stream_of(m) for m in msgs} == {"btcusdt@aggTrade"}
            assert (await request(ws, "LIST_SUBSCRIPTIONS", 2))["result"] == ["nosuchusdt@aggTrade",
                                                                              "btcusdt@aggTrade"]

    run(go())


def test_malformed_stream_in_url_is_refused_and_trailing_slash_is_not_a_route(srv: SimServer) -> None:
    async def go() -> None:
        with pytest.raises(InvalidStatus) as bad:
            async with connect(f"{srv.ws_url}/market/ws/not%20asdfads"):
                pass
        assert bad.value.response.status_code == 400
        with pytest.raises(InvalidStatus) as slash:
            async with connect(f"{srv.ws_url}/ws/"):
                pass
        assert slash.value.response.status_code == 404

    run(go())


# ----- live requests ---------------------------------------------------------------------------------
def test_subscribe_unsubscribe_list_match_the_doc_sample(srv: SimServer) -> None:
    lines = [json.loads(x) for x in (SAMPLES / "subscribe_request_and_ack_DOC.jsonl").read_text().splitlines()]

    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/ws") as ws:
            for req, expected in zip(lines[0::2], lines[1::2], strict=True):
                await ws.send(json.dumps(req))
                assert await reply_to(ws, req["id"]) == expected

    run(go())


def test_properties_combined(srv: SimServer) -> None:
    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/ws/btcusdt@aggTrade") as ws:
            assert (await request(ws, "GET_PROPERTY", 1, ["combined"]))["result"] is False
            assert await request(ws, "SET_PROPERTY", 2, ["combined", True]) == {"result": None, "id": 2}
            assert (await request(ws, "GET_PROPERTY", 3, ["combined"]))["result"] is True
            bad_type = await request(ws, "SET_PROPERTY", 4, ["combined", "yes"])
            assert bad_type["error"] == {"code": 1, "msg": "Invalid value type: expected Boolean"}
            unknown = await request(ws, "GET_PROPERTY", 5, ["colour"])
            assert unknown["error"] == {"code": 0, "msg": "Unknown property"}
            control(srv, "clock", speed=30)
            msgs = await collect(ws, 3)
            assert all(m.get("stream") == "btcusdt@aggTrade" for m in msgs)  # now wrapped
        async with connect(f"{srv.ws_url}/public/stream") as ws:
            assert (await request(ws, "GET_PROPERTY", 1, ["combined"]))["result"] is True

    run(go())


def test_request_errors(srv: SimServer) -> None:
    real = json.loads((SAMPLES / "error_invalid_stream_real_ccxt_pr19833.json").read_text())

    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/ws") as ws:
            assert await request(ws, "SUBSCRIBE", 9, ["not asdfads"]) == {"error": real, "id": 9}
            assert (await request(ws, "LIST_SUBSCRIPTIONS", 10))["result"] == []
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": "x"}))
            err = await reply_to(ws, None)
            assert err["error"] == {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": -1}))
            assert (await reply_to(ws, None))["error"]["code"] == 2
            unknown = await request(ws, "SUBSCRIBEX", 11, [])
            assert unknown["error"]["code"] == 2
            assert unknown["error"]["msg"].startswith("Invalid request: unknown variant `SUBSCRIBEX`")
            await ws.send(json.dumps({"params": [], "id": 12}))
            missing = await reply_to(ws, 12)
            assert missing["error"]["msg"].startswith("Invalid request: missing field `method`")
            bad_interval = await request(ws, "SUBSCRIBE", 13, ["btcusdt@kline_7m"])
            assert bad_interval == {"error": real, "id": 13}
            # the connection survives all of these
            assert (await request(ws, "LIST_SUBSCRIPTIONS", 14))["result"] == []

    run(go())


def test_invalid_json_gets_code_3_then_disconnect(srv: SimServer) -> None:
    doc = json.loads((SAMPLES / "error_invalid_json_DOC.json").read_text())

    async def go() -> None:
        async with connect(f"{srv.ws_url}/public/ws") as ws:
            await ws.send("not json")
            msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert msg == doc
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), TIMEOUT)

    run(go())


def test_stream_limit_per_connection(srv: SimServer) -> None:
    names = [f"s{i}usdt@aggTrade" for i in range(1025)]

    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/ws") as ws:
            over = await request(ws, "SUBSCRIBE", 1, names)
            assert over["error"]["code"] == 2
            assert await request(ws, "SUBSCRIBE", 2, names[:1024]) == {"result": None, "id": 2}
            assert len((await request(ws, "LIST_SUBSCRIPTIONS", 3))["result"]) == 1024
            extra = await request(ws, "SUBSCRIBE", 4, names[1024:])
            assert extra["error"]["code"] == 2
        # in the URL (aiohttp's request line limit is 8 KiB, so the cap is lowered to show it)
        control(srv, "config", max_streams=3)
        with pytest.raises(InvalidStatus) as too_many:
            async with connect(f"{srv.ws_url}/market/stream?streams=" + "/".join(names[:4])):
                pass
        assert too_many.value.response.status_code == 400
        async with connect(f"{srv.ws_url}/market/stream?streams=" + "/".join(names[:3])) as ws:
            assert len((await request(ws, "LIST_SUBSCRIPTIONS", 5))["result"]) == 3

    run(go())


def test_more_than_10_messages_a_second_drops_the_connection(srv: SimServer) -> None:
    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/ws") as ws:
            for i in range(11):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            replies = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    replies.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
            assert [r["id"] for r in replies] == list(range(10))
            assert closed.value.rcvd.code == 1008

    run(go())


# ----- pings and lifetime ----------------------------------------------------------------------------
def test_server_pings_and_disconnects_without_pong(srv: SimServer) -> None:
    """aiohttp's client here because it can show ping frames and withhold the pong (websockets hides both)."""
    control(srv, "config", ping_interval_s=0.1, pong_timeout_s=0.5)

    async def go() -> None:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(f"{srv.ws_url}/market/ws", autoping=False) as ws:
                first = await ws.receive(timeout=TIMEOUT)
                assert first.type == aiohttp.WSMsgType.PING
                await ws.pong(first.data)  # answered: the connection stays, and pings continue
                second = await ws.receive(timeout=TIMEOUT)
                assert second.type == aiohttp.WSMsgType.PING
                while True:  # not answered from now on: the server hangs up
                    msg = await ws.receive(timeout=TIMEOUT)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                    assert msg.type == aiohttp.WSMsgType.PING
                assert ws.close_code == 1008

    run(go())


def test_lifetime_cap_closes_the_connection(srv: SimServer) -> None:
    control(srv, "config", lifetime_s=0.3)

    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/stream?streams=btcusdt@aggTrade") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert closed.value.rcvd.code == 1001

    run(go())


# ----- fault switches --------------------------------------------------------------------------------
def test_drop_closes_abruptly(srv: SimServer) -> None:
    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/stream?streams=btcusdt@aggTrade") as ws:
            control(srv, "clock", speed=30)
            await collect(ws, 3)
            assert control(srv, "drop", stream="btcusdt@aggTrade") == 1
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert closed.value.rcvd is None  # no close frame: the TCP connection just ended

    run(go())


def test_stall_keeps_the_connection_open_and_silent(srv: SimServer) -> None:
    async def go() -> None:
        url = f"{srv.ws_url}/market/stream?streams=btcusdt@aggTrade"
        async with connect(url) as quiet, connect(url) as loud:
            conns = {c["id"] for c in control(srv, "state")["connections"]}
            assert len(conns) == 2
            control(srv, "stall", conn=min(conns), on=True)
            control(srv, "clock", speed=30)
            await collect(loud, 40)  # market time passed: the stalled connection had its chance
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(quiet.recv(), 0.2)
            await quiet.ping()  # still open at the TCP level; no pong while stalled
            control(srv, "stall", conn=min(conns), on=False)
            assert (await collect(quiet, 3))[0]["stream"] == "btcusdt@aggTrade"

    run(go())


def test_malformed_frame(srv: SimServer) -> None:
    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/stream?streams=btcusdt@aggTrade") as ws:
            assert control(srv, "malformed") == 1
            frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
            with pytest.raises(json.JSONDecodeError):
                json.loads(frame)

    run(go())


def test_burst_sends_n_copies_at_once(srv: SimServer) -> None:
    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/stream?streams=btcusdt@markPrice@1s") as ws:
            control(srv, "clock", speed=10)
            first = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            control(srv, "clock", speed=None)
            assert control(srv, "burst", count=500) == 500
            got = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in range(500)]
            assert all(m["stream"] == first["stream"] for m in got)
            assert len({json.dumps(m) for m in got}) <= 2  # the latest payload, repeated

    run(go())


def test_synthetic_rate_streams_consecutive_trades_on_a_frozen_clock(srv: SimServer) -> None:
    async def go() -> None:
        async with connect(f"{srv.ws_url}/market/ws/btcusdt@aggTrade") as ws:
            control(srv, "rate", stream="btcusdt@aggTrade", rate=20_000)
            msgs = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in range(2000)]
            ids = [m["a"] for m in msgs]
            assert ids == list(range(ids[0], ids[0] + 2000))
            control(srv, "rate", stream="btcusdt@aggTrade", rate=0)

    run(go())


def test_control_rejects_bad_input(srv: SimServer) -> None:
    r = httpx.post(f"{srv.url}/_sim/ws/config", json={"lifetime": 3})
    assert r.status_code == 400 and "lifetime" in r.text
    r = httpx.post(f"{srv.url}/_sim/ws/break_depth", json={"symbol": "BTCUSDT", "mode": "sideways"})
    assert r.status_code == 400 and "sideways" in r.text
    assert httpx.post(f"{srv.url}/_sim/ws/nonsense", json={}).status_code == 404
