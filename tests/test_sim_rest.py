"""Simulator REST: shapes compared with real samples, range semantics, errors, weights."""

from __future__ import annotations

import json

import httpx
import pytest

from marketdata_assets.binance.klines import raw_klines_from_rest
from marketdata_sim.symbols import utc_ms
from tests.support.samples import SAMPLES as SAMPLES_ROOT

SAMPLES = SAMPLES_ROOT
REST = SAMPLES / "rest"


def _sample(name: str) -> object:
    return json.loads((REST / name).read_text())


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value[:1]]
    return type(value).__name__


@pytest.fixture
def client(sim_session) -> httpx.Client:
    with httpx.Client(base_url=sim_session.url, timeout=10) as c:
        yield c


def test_klines_rows_match_the_real_row_layout_and_parse(client: httpx.Client) -> None:
    real = _sample("klines_BTCUSDT_5m_2021-03-21_hexdocs_binance_futures.json")
    rows = client.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "5m", "limit": 10}).json()
    assert [type(v) for v in rows[0]] == [type(v) for v in real[0]]
    for got, ref in zip(rows[0], real[0], strict=True):
        if isinstance(ref, str):  # same number of decimals as real BTCUSDT
            assert len(got.partition(".")[2]) == len(ref.partition(".")[2])
    raw = raw_klines_from_rest(rows, "BTCUSDT", "5m")
    assert len(raw) == 10 and raw.frame["close_time"].iloc[0].value // 10**6 == rows[0][6]
    assert rows[0][6] == rows[0][0] + 300_000 - 1 and rows[0][11] == "0"


@pytest.mark.parametrize(("path", "sample", "param"), [
    ("/fapi/v1/markPriceKlines", "markPriceKlines_DOC_EXAMPLE_not_real.json", "symbol"),
    ("/fapi/v1/premiumIndexKlines", "premiumIndexKlines_DOC_EXAMPLE.json", "symbol"),
    ("/fapi/v1/indexPriceKlines", "markPriceKlines_DOC_EXAMPLE_not_real.json", "pair"),
])
def test_price_klines_shape(client: httpx.Client, path: str, sample: str, param: str) -> None:
    real = _sample(sample)[0]
    row = client.get(path, params={param: "BTCUSDT", "interval": "1m", "limit": 2}).json()[0]
    assert [type(v) for v in row] == [type(v) for v in real]
    assert row[5] == row[7] == row[9] == row[10] == "0"
    assert row[8] == real[8]  # 60 samples per minute (mark/index), 12 (premium)
    assert len(row[1].partition(".")[2]) == 8


def test_exchange_info_has_the_real_key_sets(client: httpx.Client) -> None:
    real = _sample("exchangeInfo_full_2021-07-22_cryptofeed.json")
    info = client.get("/fapi/v1/exchangeInfo").json()
    assert set(info) == set(real)
    assert list(info["symbols"][0]) == list(real["symbols"][0])
    assert _types(info["symbols"][0]) == _types(real["symbols"][0])
    assert {f["filterType"] for f in info["symbols"][0]["filters"]} == {
        f["filterType"] for f in real["symbols"][0]["filters"]}
    assert info["rateLimits"][0] == {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                     "limit": 2400}
    by = {s["symbol"]: s for s in info["symbols"]}
    assert by["BTCUSDT"]["onboardDate"] == 1569398400000 and by["BTCUSDT"]["deliveryDate"] == 4133404800000
    assert by["OLDUSDT"]["status"] == "SETTLING" and by["OLDUSDT"]["deliveryDate"] == utc_ms("2024-02-20 08:00")
    assert by["OLDUSDT"]["contractType"] == "PERPETUAL"
    assert "GONEUSDT" not in by  # delisted and removed: REST answers -1121
    price_filter = by["BTCUSDT"]["filters"][0]
    assert price_filter["tickSize"] == "0.1"


@pytest.mark.parametrize(("path", "params", "sample"), [
    ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 5}, "cryptomsgparser_l2_snapshot_linear_swap_L1534.json"),
    ("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}, "premiumIndex_DOC_EXAMPLE.json"),
    ("/fapi/v1/fundingRate", {"symbol": "BTCUSDT", "limit": 2}, "fundingRate_DOC_EXAMPLE.json"),
    ("/fapi/v1/time", {}, "time_DOC_EXAMPLE.json"),
    ("/fapi/v1/ping", {}, "ping_DOC_EXAMPLE.json"),
])
def test_other_endpoints_match_sample_types(client: httpx.Client, path: str, params: dict, sample: str) -> None:
    got = client.get(path, params=params).json()
    assert _types(got) == _types(_sample(sample))


def test_agg_trades_and_ticker_shapes(client: httpx.Client) -> None:
    ws = json.loads((SAMPLES / "ws" / "combined_aggTrade_2021-07-22_cryptofeed.jsonl").read_text().splitlines()[0])
    real = {k: v for k, v in ws["data"].items() if k not in ("e", "E", "s")}
    rows = client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "limit": 3}).json()
    assert _types(rows[0]) == _types(real) and len(rows) == 3
    ticker = client.get("/fapi/v1/ticker/24hr", params={"symbol": "ETHUSDT"}).json()
    assert set(ticker) == {"symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "lastPrice",
                           "lastQty", "openPrice", "highPrice", "lowPrice", "volume", "quoteVolume", "openTime",
                           "closeTime", "firstId", "lastId", "count"}
    assert ticker["lastId"] - ticker["firstId"] + 1 == ticker["count"]


def test_range_semantics(client: httpx.Client) -> None:
    def get(**params: object) -> list:
        return client.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", **params}).json()

    base = utc_ms("2024-03-05 05:22")
    rows = get(startTime=base + 40_000, endTime=base + 5 * 60_000 + 40_000)  # SPEC A.3 example
    assert [r[0] for r in rows] == [base + i * 60_000 for i in range(1, 6)]
    assert [r[0] for r in get(startTime=base, endTime=base)] == [base]
    assert len(get()) == 500  # default limit, most recent, last one in progress
    recent = get(limit=3)
    assert recent[-1][0] == utc_ms("2024-04-02 12:00")
    only_start = get(startTime=base, limit=4)
    assert [r[0] for r in only_start] == [base + i * 60_000 for i in range(4)]
    only_end = get(endTime=base, limit=4)
    assert [r[0] for r in only_end] == [base - i * 60_000 for i in (3, 2, 1, 0)]
    before_listing = client.get("/fapi/v1/klines", params={"symbol": "NEWUSDT", "interval": "1d",
                                                             "startTime": 0, "limit": 2}).json()
    assert before_listing[0][0] == utc_ms("2024-02-15")
    gap = get(startTime=utc_ms("2024-02-10 06:35"), endTime=utc_ms("2024-02-10 06:59"))
    assert gap == []  # a range wholly inside an outage: 200 and []


@pytest.mark.parametrize("interval", ["5m", "1h", "4h"])
def test_an_end_time_inside_a_bar_still_returns_the_whole_bar(client: httpx.Client, interval: str) -> None:
    # the range selects bars by open time; the bar itself is aggregated from all of its minutes
    start = utc_ms("2024-03-01 00:00")
    params = {"symbol": "BTCUSDT", "interval": interval, "startTime": start}
    bounded = client.get("/fapi/v1/klines", params={**params, "endTime": start}).json()
    unbounded = client.get("/fapi/v1/klines", params={**params, "limit": 1}).json()
    assert bounded == unbounded and len(bounded) == 1


@pytest.mark.parametrize(("params", "code"), [
    ({"symbol": "XXXUSDT", "interval": "1m"}, -1121),
    ({"symbol": "GONEUSDT", "interval": "1m"}, -1121),
    ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
    ({"symbol": "BTCUSDT", "interval": "1s"}, -1120),
    ({"interval": "1m"}, -1102),
    ({"symbol": "BTCUSDT"}, -1102),
    ({"symbol": "BTCUSDT", "interval": "1m", "limit": 1501}, -1130),
    ({"symbol": "BTCUSDT", "interval": "1m", "startTime": 2, "endTime": 1}, -1023),
    ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "abc"}, -1100),
])
def test_kline_errors(client: httpx.Client, params: dict, code: int) -> None:
    r = client.get("/fapi/v1/klines", params=params)
    assert r.status_code == 400
    assert r.json()["code"] == code
    if code == -1121:
        assert r.json() == {"code": -1121, "msg": "Invalid symbol."}


def test_limit_1500_is_accepted(client: httpx.Client) -> None:
    rows = client.get("/fapi/v1/klines", params={"symbol": "ETHUSDT", "interval": "1m", "limit": 1500}).json()
    assert len(rows) == 1500


def test_weights_per_spec(sim) -> None:
    cases = [
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": 99}, 1),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": 100}, 2),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1h"}, 5),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": 1000}, 5),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": 1001}, 10),
        ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 50}, 2),
        ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 100}, 5),
        ("/fapi/v1/depth", {"symbol": "BTCUSDT"}, 10),
        ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 1000}, 20),
        ("/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"}, 1),
        ("/fapi/v1/ticker/24hr", {}, 40),
        ("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}, 1),
        ("/fapi/v1/premiumIndex", {}, 10),
        ("/fapi/v1/aggTrades", {"symbol": "BTCUSDT", "limit": 5}, 20),
        ("/fapi/v1/fundingRate", {"symbol": "BTCUSDT"}, 0),
        ("/fapi/v1/exchangeInfo", {}, 1),
    ]
    with httpx.Client(base_url=sim.url, timeout=10) as c:
        for path, params, weight in cases:
            before = sim.stats()["total_weight"]
            r = c.get(path, params=params)
            assert r.status_code == 200, (path, r.text)
            assert sim.stats()["total_weight"] - before == weight, (path, params)
            assert "X-MBX-USED-WEIGHT-1M" in r.headers


@pytest.mark.parametrize("kind", ["trade", "mark", "index", "premium"])
@pytest.mark.parametrize("interval", ["1m", "1h", "1d", "1w", "1M"])
def test_a_kline_page_is_written_exactly_as_orjson_writes_its_rows(kind, interval):
    """The page body is built as one byte matrix (marketdata_sim.fmt.json_rows), not from a Python object
    per value: it must be byte for byte what orjson.dumps makes of kline_rest_rows, empty pages included."""
    import orjson

    from marketdata_sim.market import SimMarket

    market = SimMarket(now="2024-02-01T00:00:00Z")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        spec = market.spec(symbol)
        for start, limit in ((utc_ms("2024-01-01"), 499), (utc_ms("2020-09-01"), 7), (utc_ms("2030-01-01"), 5)):
            bars = market.klines(symbol, interval, start, None, limit, kind)
            assert market.kline_rest_json(spec, interval, bars, kind) == \
                orjson.dumps(market.kline_rest_rows(spec, interval, bars, kind))
