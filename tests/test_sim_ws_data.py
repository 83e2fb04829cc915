"""The simulator's stream payloads (SPEC B.4) against the real samples and against its own REST answers.

The market clock is frozen and moved by the test (`market.advance`); after each move the test waits for
the event stamped with the new time, so every comparison with REST happens at the same market instant.
"""

from __future__ import annotations

import asyncio
import json
import random
from decimal import Decimal

import httpx
import pytest

from marketdata_sim.server import SimServer
from streaming.messages import decode_frame
from tests.support.samples import SAMPLES as SAMPLES_ROOT
from tests.support.sim import WS_NOW, connect

SAMPLES = SAMPLES_ROOT
NOW = WS_NOW
TIMEOUT = 10.0


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 90))


def rest(server: SimServer, path: str, **params: object) -> object:
    r = httpx.get(f"{server.url}{path}", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def control(server: SimServer, action: str, **body: object) -> object:
    r = httpx.post(f"{server.url}/_sim/ws/{action}", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["result"]


async def until(ws, pred) -> list[dict]:  # noqa: ANN001
    """Messages up to and including the first one for which pred(data) holds."""
    out = []
    while True:
        raw = await asyncio.wait_for(ws.recv(), TIMEOUT)
        msg = json.loads(raw)
        out.append(msg)
        if pred(msg.get("data", msg)):
            return out


def sample(rel: str, line: int = 0) -> dict:
    text = (SAMPLES / rel).read_text().splitlines()[line]
    return json.loads(text)


def shape(obj: dict) -> dict[str, type]:
    return {k: type(v) for k, v in obj.items()}


# ----- shapes ------------------------------------------------------------------------------------------
def test_payload_shapes_match_the_real_samples(srv: SimServer) -> None:
    market_streams = ["btcusdt@kline_1m", "btcusdt@aggTrade", "btcusdt@markPrice@1s", "btcusdt@markPrice",
                      "btcusdt@ticker", "btcusdt@miniTicker", "!markPrice@arr"]
    public_streams = ["btcusdt@bookTicker", "btcusdt@depth@100ms", "btcusdt@depth20"]
    expected = {
        "btcusdt@kline_1m": sample("ws/combined_kline_1m_open_2021-07-22_cryptofeed.jsonl"),
        "btcusdt@aggTrade": sample("ws/combined_aggTrade_2021-07-22_cryptofeed.jsonl"),
        "btcusdt@markPrice@1s": sample("ws/combined_markPrice1s_EOSUSDT_2021-03-24_real.json"),
        "btcusdt@markPrice": sample("ws/cryptomsgparser_funding_rate_linear_swap_L220.json"),
        "btcusdt@ticker": sample("ws/cryptomsgparser_ticker_linear_swap_L1095.json"),
        "btcusdt@bookTicker": sample("ws/combined_bookTicker_2021-07-22_cryptofeed.jsonl"),
        "btcusdt@depth@100ms": sample("ws/combined_depth_100ms_2021-07-22_cryptofeed.jsonl"),
        "btcusdt@depth20": sample("ws/cryptomsgparser_l2_topk_linear_swap_L773.json"),
        "!markPrice@arr": sample("ws/cryptomsgparser_funding_rate_linear_swap_all_L251.json"),
    }
    # fields added after the recordings, per the 2026 docs samples
    added = {"btcusdt@aggTrade": {"nq"}, "btcusdt@markPrice@1s": {"ap"}, "btcusdt@markPrice": {"ap"},
             "!markPrice@arr": {"ap"}}
    doc_agg = set(sample("ws/aggTrade_DOC_EXAMPLE_2026_with_nq.json"))
    doc_mark = set(sample("ws/markPrice_DOC_EXAMPLE_2026_with_ap.json"))
    assert doc_agg == set(expected["btcusdt@aggTrade"]["data"]) | {"nq"}
    assert doc_mark == set(expected["btcusdt@markPrice"]["data"]) | {"ap"}

    async def go() -> dict[str, list[dict]]:
        got: dict[str, list[dict]] = {}
        url_m = f"{srv.ws_url}/market/stream?streams=" + "/".join(market_streams)
        url_p = f"{srv.ws_url}/public/stream?streams=" + "/".join(public_streams)
        async with connect(url_m) as m, connect(url_p) as p:
            for _ in range(3):  # 3 x 1.5 s, then past the minute: every stream has spoken
                srv.market.advance(1500)
                now = srv.market.now_ms
                for ws in (m, p):
                    for msg in await until(ws, lambda d, now=now: isinstance(d, dict) and d.get("E") == now):
                        got.setdefault(msg["stream"], []).append(msg)
            srv.market.advance(60_000)
            for msg in await until(m, lambda d: isinstance(d, dict) and d.get("k", {}).get("x") is True):
                got.setdefault(msg["stream"], []).append(msg)
        return got

    got = run(go())
    assert set(got) >= set(expected) | {"btcusdt@miniTicker"}
    for name, real in expected.items():
        ours = got[name][-1]
        decode_frame(json.dumps(ours))  # the sidecar's decoder accepts it
        real_data, our_data = real["data"], ours["data"]
        if isinstance(real_data, list):
            real_data, our_data = real_data[0], our_data[0]
        assert set(our_data) == set(real_data) | added.get(name, set()), name
        assert {k: t for k, t in shape(our_data).items() if k in real_data} == shape(real_data), name
        if "k" in real_data:
            assert shape(our_data["k"]) == shape(real_data["k"])
    closed = [m["data"]["k"] for m in got["btcusdt@kline_1m"] if m["data"]["k"]["x"]]
    assert len(closed) == 1
    mini = got["btcusdt@miniTicker"][-1]["data"]
    assert set(mini) == {"e", "E", "s", "c", "o", "h", "l", "v", "q"} and mini["e"] == "24hrMiniTicker"


# ----- klines ------------------------------------------------------------------------------------------
def _rest_kline(srv: SimServer, interval: str, t: int) -> list:
    rows = rest(srv, "/fapi/v1/klines", symbol="BTCUSDT", interval=interval, startTime=t, limit=1)
    assert len(rows) == 1 and rows[0][0] == t
    return rows[0]


def _as_rest_row(k: dict) -> list:
    return [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], k["B"]]


def test_closed_kline_is_sent_once_and_equals_the_rest_bar(srv: SimServer) -> None:
    srv.market.set_now("2024-03-01T12:04:59Z")

    async def go() -> list[dict]:
        url = f"{srv.ws_url}/market/stream?streams=btcusdt@kline_1m/btcusdt@kline_5m/ethusdt@kline_1h"
        async with connect(url) as ws:
            msgs: list[dict] = []
            for step in (500, 1000, 700, 30_000, 30_000):  # crosses 12:05:00 and 12:06:00
                srv.market.advance(step)
                now = srv.market.now_ms
                msgs += await until(ws, lambda d, now=now: d["E"] == now and d["k"]["i"] == "1m")
                if step == 500:  # the open bar, with REST's partial values at this instant
                    k = msgs[-1]["data"]["k"]
                    assert not k["x"] and _as_rest_row(k) == _rest_kline(srv, "1m", k["t"])
            return msgs

    msgs = run(go())
    closed = [m["data"]["k"] for m in msgs if m["data"]["k"]["x"]]
    assert sorted((k["i"], k["t"]) for k in closed) == [
        ("1m", 1709294640000), ("1m", 1709294700000), ("5m", 1709294400000)]
    for k in closed:
        assert _as_rest_row(k) == _rest_kline(srv, k["i"], k["t"]), k
        assert k["L"] - k["f"] + 1 == k["n"]
    # open-bar updates never go back to a closed bar
    for m in msgs:
        k = m["data"]["k"]
        if not k["x"] and k["i"] == "1m":
            assert k["T"] >= m["data"]["E"]


def test_running_clock_delivers_a_closed_kline_equal_to_rest(srv: SimServer) -> None:
    async def go() -> dict:
        async with connect(f"{srv.ws_url}/market/ws/solusdt@kline_1m") as ws:
            control(srv, "clock", speed=120, anchor="2024-03-01T12:00:58Z")
            closed = (await until(ws, lambda d: d["k"]["x"]))[-1]
            control(srv, "clock", speed=None)
            return closed

    k = run(go())["k"]
    assert k["t"] == 1709294400000
    rows = rest(srv, "/fapi/v1/klines", symbol="SOLUSDT", interval="1m", startTime=k["t"], endTime=k["t"])
    assert _as_rest_row(k) == rows[0]


def test_no_kline_for_an_outage_window(srv: SimServer) -> None:
    """The default outage (2024-02-10 06:35-07:00) has no bars on REST, so none closes on the stream."""
    srv.market.set_now("2024-02-10T06:34:30Z")

    async def go() -> list[dict]:
        async with connect(f"{srv.ws_url}/market/ws/btcusdt@kline_1m") as ws:
            srv.market.advance(40_000)  # 06:35:10: the 06:34 bar closes, nothing is open
            first = await until(ws, lambda d: d["k"]["x"])
            srv.market.advance(26 * 60_000)  # 07:01:10: the 07:00 bar closes
            return first + await until(ws, lambda d: d["k"]["x"])

    closed = [m["k"]["t"] for m in run(go()) if m["k"]["x"]]
    assert closed == [1707546840000, 1707548400000]  # 06:34 and 07:00
    assert rest(srv, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", startTime=1707546900000,
                endTime=1707548399999) == []


# ----- aggregate trades --------------------------------------------------------------------------------
def test_agg_trades_are_consecutive_and_equal_rest(srv: SimServer) -> None:
    start = srv.market.now_ms

    async def go() -> tuple[list[dict], int]:
        async with connect(f"{srv.ws_url}/market/ws/ethusdt@aggTrade") as ws:
            for step in (250, 250, 3_000, 65_000, 100):
                srv.market.advance(step)
            end = srv.market.now_ms
            expected = rest(srv, "/fapi/v1/aggTrades", symbol="ETHUSDT", startTime=start + 1, endTime=end,
                            limit=1000)
            got = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in expected]
            srv.market.advance(5_000)
            nxt = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            return expected, got, nxt

    expected, got, nxt = run(go())
    assert 20 < len(expected) < 1000
    ids = [m["a"] for m in got]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert [{k: m[k] for k in ("a", "p", "q", "f", "l", "T", "m")} for m in got] == expected
    assert all(m["nq"] == m["q"] and m["s"] == "ETHUSDT" for m in got)
    assert nxt["a"] == ids[-1] + 1


# ----- depth -------------------------------------------------------------------------------------------
class RefBook:
    """The USD-M local book algorithm of SPEC B.5, written as plainly as possible."""

    def __init__(self, snapshot: dict) -> None:
        self.last_u = snapshot["lastUpdateId"]
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.synced = False

    def apply(self, ev: dict) -> bool:
        """False when the chain is broken (the caller must resync from a new snapshot)."""
        if not self.synced:
            if ev["u"] < self.last_u:
                return True  # older than the snapshot: dropped
            if not ev["U"] <= self.last_u <= ev["u"]:
                return False
            self.synced = True
        elif ev["pu"] != self.last_u:
            return False
        for side, levels in ((self.bids, ev["b"]), (self.asks, ev["a"])):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.last_u = ev["u"]
        return True

    def view(self) -> tuple[list, list]:
        bids = sorted(self.bids.items(), key=lambda x: -Decimal(x[0]))
        asks = sorted(self.asks.items(), key=lambda x: Decimal(x[0]))
        return [list(b) for b in bids], [list(a) for a in asks]


def test_reference_sync_accepts_the_real_sushi_sequence() -> None:
    """Positive control for RefBook: Binance's own events chain with Binance's own snapshot."""
    snap = json.loads((SAMPLES / "rest/depth_SUSHIUSDT_limit1000_2021-07-22_cryptofeed.json").read_text())
    lines = (SAMPLES / "ws/combined_depth_100ms_SUSHIUSDT_full_sequence_2021-07-22_cryptofeed.jsonl").read_text()
    book = RefBook(snap)
    for line in lines.splitlines():
        assert book.apply(json.loads(line)["data"])
    assert book.synced


def _snapshot(srv: SimServer, symbol: str) -> dict:
    return rest(srv, "/fapi/v1/depth", symbol=symbol, limit=1000)


@pytest.mark.parametrize(("symbol", "stream"), [("BTCUSDT", "depth@100ms"), ("OLDUSDT", "depth@500ms"),
                                                ("SOLUSDT", "depth")])
def test_depth_snapshot_and_diffs_stay_equal_to_rest(srv: SimServer, symbol: str, stream: str) -> None:
    srv.market.set_now("2024-02-12T12:00:58.500Z")  # OLDUSDT is still listed then
    name = f"{symbol.lower()}@{stream}"
    period = {"depth@100ms": 100, "depth@500ms": 500, "depth": 250}[stream]

    async def go() -> None:
        async with connect(f"{srv.ws_url}/public/stream?streams={name}") as ws:
            buffered: list[dict] = []

            async def step(ms: int) -> None:
                srv.market.advance(ms)
                now = srv.market.now_ms
                buffered.extend(m["data"] for m in await until(ws, lambda d, now=now: d["E"] == now))

            await step(period + 20)
            srv.market.advance(period // 2)  # the snapshot falls strictly inside the next event
            book = RefBook(_snapshot(srv, symbol))
            for ms in (period, 700, 2_600, 61_000, period, 45_000, 3_700, 8 * 60_000):
                await step(ms)
                for ev in buffered:
                    assert book.apply(ev), ev
                buffered.clear()
                final = _snapshot(srv, symbol)
                assert book.last_u == final["lastUpdateId"]
                assert book.view() == (final["bids"], final["asks"])

    run(go())


def test_depth_under_a_running_clock_then_frozen(srv: SimServer) -> None:
    async def go() -> None:
        url = f"{srv.ws_url}/public/stream?streams=btcusdt@depth@100ms/ethusdt@depth"
        async with connect(url) as ws:
            control(srv, "clock", speed=20)
            books: dict[str, RefBook] = {}
            for _ in range(60):
                d = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["data"]
                if d["s"] not in books:  # snapshot after the first event: it is newer, the event is dropped
                    books[d["s"]] = RefBook(_snapshot(srv, d["s"]))
                assert books[d["s"]].apply(d)
            assert set(books) == {"BTCUSDT", "ETHUSDT"} and all(b.synced for b in books.values())
            control(srv, "clock", speed=None)
            srv.market.advance(600)
            now = srv.market.now_ms
            seen = set()
            while seen != {"BTCUSDT", "ETHUSDT"}:
                d = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["data"]
                assert books[d["s"]].apply(d)
                if d["E"] == now:
                    seen.add(d["s"])
            for sym, book in books.items():
                final = _snapshot(srv, sym)
                assert book.last_u == final["lastUpdateId"]
                assert book.view() == (final["bids"], final["asks"])

    run(go())


@pytest.mark.parametrize("mode", ["skip", "perturb"])
def test_break_depth_is_detected_and_a_resync_recovers(srv: SimServer, mode: str) -> None:
    async def go() -> None:
        url = f"{srv.ws_url}/public/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms"
        async with connect(url) as ws:
            async def step(ms: int, symbol: str = "BTCUSDT") -> dict:
                srv.market.advance(ms)
                now = srv.market.now_ms
                return (await until(ws, lambda d, now=now: d["E"] == now and d["s"] == symbol))[-1]["data"]

            buffered = await step(150)
            book = RefBook(_snapshot(srv, "BTCUSDT"))  # lastUpdateId == the buffered event's u
            assert book.apply(buffered) and book.synced
            assert book.apply(await step(150))
            assert control(srv, "break_depth", symbol="BTCUSDT", mode=mode) == 1
            if mode == "skip":  # that event never comes (ETHUSDT's shows the tick happened) ...
                await step(150, "ETHUSDT")
                ev = await step(150)  # ... and the next one does not chain
            else:  # it comes with a wrong pu
                ev = await step(150)
                assert ev["pu"] == book.last_u - 1
            assert not book.apply(ev)
            book = RefBook(_snapshot(srv, "BTCUSDT"))  # resync that symbol only, from the buffered event
            assert book.apply(ev) and book.synced
            assert book.apply(await step(150))
            assert book.apply(await step(150))
            final = _snapshot(srv, "BTCUSDT")
            assert book.view() == (final["bids"], final["asks"])

    run(go())


# ----- mark price, ticker, book ticker -----------------------------------------------------------------
def test_mark_price_ticker_and_book_ticker_equal_rest_at_the_same_instant(srv: SimServer) -> None:
    async def go() -> dict[str, dict]:
        got: dict[str, dict] = {}
        url_m = f"{srv.ws_url}/market/stream?streams=btcusdt@markPrice@1s/btcusdt@ticker"
        url_p = f"{srv.ws_url}/public/ws/btcusdt@bookTicker"
        async with connect(url_m) as m, connect(url_p) as p:
            srv.market.advance(2_000)
            now = srv.market.now_ms
            while len(got) < 2:
                msg = json.loads(await asyncio.wait_for(m.recv(), TIMEOUT))
                if msg["data"]["E"] == now:
                    got[msg["stream"]] = msg["data"]
            got["book"] = (await until(p, lambda d: d["E"] == now))[-1]
            got["premium"] = rest(srv, "/fapi/v1/premiumIndex", symbol="BTCUSDT")
            got["ticker24"] = rest(srv, "/fapi/v1/ticker/24hr", symbol="BTCUSDT")
            got["depth"] = rest(srv, "/fapi/v1/depth", symbol="BTCUSDT", limit=5)
        return got

    got = run(go())
    mark, pi = got["btcusdt@markPrice@1s"], got["premium"]
    assert (mark["p"], mark["i"], mark["P"], mark["r"], mark["T"]) == (
        pi["markPrice"], pi["indexPrice"], pi["estimatedSettlePrice"], pi["lastFundingRate"], pi["nextFundingTime"])
    assert mark["T"] > mark["E"] and Decimal(mark["r"]) != 0
    t, r = got["btcusdt@ticker"], got["ticker24"]
    assert (t["c"], t["o"], t["h"], t["l"], t["v"], t["q"], t["O"], t["F"], t["L"], t["n"]) == (
        r["lastPrice"], r["openPrice"], r["highPrice"], r["lowPrice"], r["volume"], r["quoteVolume"],
        r["openTime"], r["firstId"], r["lastId"], r["count"])
    b, d = got["book"], got["depth"]
    assert [b["b"], b["B"]] == d["bids"][0] and [b["a"], b["A"]] == d["asks"][0]
    assert b["u"] == d["lastUpdateId"]


def test_depth_diff_brings_any_book_inside_the_window_to_its_end() -> None:
    """ws_depth without sockets: for windows (t1, t2] up to a minute long and across minute boundaries
    (where the mid price turns), the diff applied to the REST book at any instant inside the window gives
    the REST book at t2. The full book mirrors derived.depth_snapshot exactly."""
    from marketdata_sim import derived
    from marketdata_sim import ws_depth as depth
    from marketdata_sim.market import SimMarket

    market = SimMarket(now=NOW)
    rng = random.Random(7)

    def rest_book(spec, now: int) -> dict[str, dict[str, str]]:  # noqa: ANN001
        market.set_now(now)
        snap = derived.depth_snapshot(market, spec, 1000)
        return {"b": dict(map(tuple, snap["bids"])), "a": dict(map(tuple, snap["asks"])),
                "u": snap["lastUpdateId"]}

    base = market.now_ms
    checked = 0
    for symbol in ("BTCUSDT", "SOLUSDT", "OLDUSDT"):
        spec = market.spec(symbol)
        if symbol == "OLDUSDT":
            base = 1707739200000  # 2024-02-12 12:00, before its delisting
        for _ in range(12):
            boundary = base + rng.randrange(1, 120) * 60_000
            t1 = boundary - rng.randrange(1, 30_000)
            t2 = boundary + rng.randrange(1, 30_000)
            prev, cur = depth.full_book(market, spec, t1), depth.full_book(market, spec, t2)
            mlo, mhi = depth.mid_range(market, spec, t1, t2)
            bids, asks = depth.diff_levels(prev, cur, mlo, mhi, depth.depth_cap(spec))
            diff = {"b": depth.fmt_levels(spec, bids), "a": depth.fmt_levels(spec, asks)}
            end = rest_book(spec, t2)
            assert end["u"] == depth.update_id(market, spec, cur.t)
            for ts in (t1, boundary - 1, boundary, rng.randrange(t1, t2 + 1), t2):
                book = rest_book(spec, ts)
                for side in ("b", "a"):
                    for price, qty in diff[side]:
                        if Decimal(qty) == 0:
                            book[side].pop(price, None)
                        else:
                            book[side][price] = qty
                    assert book[side] == end[side], (symbol, t1, ts, t2, side)
                checked += 1
    assert checked == 3 * 12 * 5
