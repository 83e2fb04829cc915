"""BinanceRestClient and the typed errors.

First the parts that need no server (weights, page planning, error typing from real payloads, input
validation), then behaviour against the simulator (`sim` fixture).
"""

from __future__ import annotations

import json
import logging
import math
import threading

import httpx
import pytest

from marketdata_assets.binance.errors import (
    BinanceAPIError,
    BinanceServerError,
    BinanceUnavailableError,
    InvalidIntervalError,
    InvalidParameterError,
    InvalidSymbolError,
    IPBannedError,
    RateLimitedError,
    RestrictedLocationError,
    error_from_response,
    parse_banned_until_ms,
)
from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.binance.klines import raw_klines_from_rest
from marketdata_assets.binance.ratelimit import WeightBudget
from marketdata_assets.binance.rest import (
    KLINE_PAGE_LIMIT,
    BinanceRestClient,
    depth_weight,
    estimate_bars,
    kline_page_limit,
    kline_weight,
    next_open_ms,
    perpetual_symbols,
    utc_ms,
)
from marketdata_assets.settings import Settings
from marketdata_sim import SimServer
from tests.support.samples import SAMPLES as SAMPLES_ROOT

REST_SAMPLES = SAMPLES_ROOT / "rest"
KLINES_URL = "http://127.0.0.1:1/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime=0&limit=499"


# ---------------------------------------------------------------- errors from real payloads

def test_real_ip_ban_message_gives_ban_end():
    text = (REST_SAMPLES / "error_-1003_ip_ban_futures_real_2021-03-08.txt").read_text()
    raw_json = text.split("implied: ", 1)[1].strip().replace("<ip>", "1.2.3.4")
    assert parse_banned_until_ms(text) == 1615183669840
    error = error_from_response(418, raw_json, {"Retry-After": "120"}, KLINES_URL)
    assert isinstance(error, IPBannedError)
    assert error.banned_until_ms == 1615183669840
    assert error.retry_after == 120
    assert error.code == -1003
    assert "/fapi/v1/klines symbol=BTCUSDT interval=1m" in str(error)


def test_ban_message_with_429_status_is_still_a_ban():
    body = {"code": -1003, "msg": "Way too many requests; IP banned until 1615183669840."}
    assert isinstance(error_from_response(429, body), IPBannedError)


def test_real_restricted_location_error():
    body = (REST_SAMPLES / "error_451_restricted_location_real.json").read_bytes()
    error = error_from_response(451, body, {}, "https://fapi.binance.com/fapi/v1/ping")
    assert isinstance(error, RestrictedLocationError)
    assert error.code == 0 and "restricted location" in error.msg
    assert str(error).startswith("/fapi/v1/ping: HTTP 451 code 0:")


def test_invalid_symbol_and_limit_errors_from_real_bodies():
    symbol = error_from_response(400, (REST_SAMPLES / "error_invalid_symbol_DOC.json").read_bytes(),
                                 {}, KLINES_URL)
    assert isinstance(symbol, InvalidSymbolError) and symbol.code == -1121 and symbol.status == 400
    limit = error_from_response(400, (REST_SAMPLES / "error_-1130_limit_real_dapi_testnet.json").read_text())
    assert isinstance(limit, InvalidParameterError) and "'limit'" in limit.msg


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls"),
    [
        (400, {"code": -1120, "msg": "Invalid interval."}, {}, InvalidIntervalError),
        (400, {"code": -1100, "msg": "Illegal characters found in parameter 'symbol'"}, {}, InvalidParameterError),
        (400, {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent"}, {}, InvalidParameterError),
        (400, {"code": -1103, "msg": "An unknown parameter was sent."}, {}, InvalidParameterError),
        (400, {"code": -1023, "msg": "Start time is greater than end time."}, {}, InvalidParameterError),
        (429, {"code": -1003, "msg": "Too many requests; current limit is 2400"}, {"retry-after": "7"},
         RateLimitedError),
        (503, {"code": -1000, "msg": "Service Unavailable."}, {}, BinanceServerError),
        (502, "<html>Bad gateway</html>", {}, BinanceServerError),
        (403, "<html>WAF</html>", {}, BinanceAPIError),
    ],
)
def test_error_typing(status, body, headers, cls):
    error = error_from_response(status, json.dumps(body) if isinstance(body, dict) else body, headers)
    assert type(error) is cls
    assert error.status == status
    if cls is RateLimitedError:
        assert error.retry_after == 7


def test_error_message_names_request_but_not_secrets():
    url = "http://h/fapi/v1/klines?symbol=ETHUSDT&interval=5m&signature=deadbeef&apiKey=SECRET"
    text = str(error_from_response(400, {"code": -1121, "msg": "Invalid symbol."}, {}, url))
    assert "symbol=ETHUSDT" in text and "/fapi/v1/klines" in text
    assert "SECRET" not in text and "deadbeef" not in text


# ---------------------------------------------------------------- weights and page planning (SPEC A.3, A.9)

@pytest.mark.parametrize(("limit", "weight"), [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5),
                                               (1001, 10), (1500, 10)])
def test_kline_weight_table(limit, weight):
    assert kline_weight(limit) == weight


def test_kline_weight_refuses_limits_binance_rejects():
    for limit in (0, 1501):
        with pytest.raises(InvalidInputError, match=str(limit)):
            kline_weight(limit)


def test_depth_weights_and_valid_limits():
    assert [depth_weight(n) for n in (5, 10, 20, 50, 100, 500, 1000)] == [2, 2, 2, 2, 5, 10, 20]
    with pytest.raises(InvalidInputError, match="depth limit 200"):
        depth_weight(200)


def test_page_limit_is_the_cheapest_per_candle():
    day = utc_ms(2024, 1, 15)
    assert kline_page_limit("1m", day, day + 60 * 60_000) == 60  # 60 bars: one page, weight 1
    assert kline_weight(kline_page_limit("1m", day, day + 60 * 60_000)) == 1
    assert kline_page_limit("1m", day, day + 200 * 60_000) == 200  # weight 2
    assert kline_page_limit("1m", day, day + 86_400_000) == 499  # a day: 499+499+442, weight 6 in all
    assert kline_page_limit("1m", day + 998 * 60_000, day + 86_400_000) == 442
    assert kline_page_limit("1h", day, day + 86_400_000) == 24
    assert kline_page_limit("1m", day + 30_000, day + 90_000) == 1  # off-grid start: one bar (01:00)


def test_estimate_bars_for_calendar_intervals():
    assert estimate_bars("1M", utc_ms(2024, 1, 1), utc_ms(2024, 4, 1)) == 3
    assert estimate_bars("1w", utc_ms(2024, 1, 1), utc_ms(2024, 1, 29)) == 4  # 2024-01-01 was a Monday
    assert estimate_bars("3d", utc_ms(2024, 1, 1), utc_ms(2024, 1, 10)) >= 3
    assert estimate_bars("1m", 10, 5) == 0


def test_next_open_for_months_and_fixed_intervals():
    assert next_open_ms(utc_ms(2024, 1, 1), "1M") == utc_ms(2024, 2, 1)
    assert next_open_ms(utc_ms(2023, 12, 1), "1M") == utc_ms(2024, 1, 1)
    assert next_open_ms(utc_ms(2024, 1, 1), "5m") == utc_ms(2024, 1, 1, 0, 5)
    assert next_open_ms(utc_ms(2024, 1, 1), "1w") == utc_ms(2024, 1, 8)


# ---------------------------------------------------------------- exchangeInfo (SPEC A.5)

def test_perpetual_symbols_from_real_exchange_info():
    info = json.loads((REST_SAMPLES / "exchangeInfo_full_2021-07-22_cryptofeed.json").read_text())
    perps = perpetual_symbols(info)
    names = [p.symbol for p in perps]
    assert "BTCUSDT" in names and "ETHUSDT" in names
    assert "BTCUSDT_210924" not in names  # quarterly
    assert "BTCSTUSDT" not in names  # PENDING_TRADING, contractType ""
    assert names == sorted(names)
    btc = next(p for p in perps if p.symbol == "BTCUSDT")
    assert btc.onboard_ms == 1569398400000
    assert btc.delivery_ms is None  # the 2100 sentinel: no delisting scheduled


# ---------------------------------------------------------------- client construction and validation

def test_repr_and_logs_never_show_the_api_key(caplog):
    with BinanceRestClient("http://127.0.0.1:1", api_key="my-very-secret-key") as client, \
            caplog.at_level(logging.DEBUG):
        assert "my-very-secret-key" not in repr(client)
        assert "***" in repr(client)
        assert client._http.headers["X-MBX-APIKEY"] == "my-very-secret-key"
    assert "my-very-secret-key" not in caplog.text


def test_from_settings():
    settings = Settings.from_env({"BINANCE_FAPI_URL": "http://127.0.0.1:9/", "BINANCE_API_KEY": "k"})
    with BinanceRestClient.from_settings(settings) as client:
        assert client.base_url == "http://127.0.0.1:9"
        assert client._http.headers["X-MBX-APIKEY"] == "k"
    with BinanceRestClient.from_settings(Settings.from_env({})) as client:
        assert "X-MBX-APIKEY" not in client._http.headers


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.klines("btcusdt", "1m", 0, 60_000), "btcusdt"),
        (lambda c: c.klines("BTCUSDT", "1s", 0, 60_000), "'1s'"),
        (lambda c: c.klines("BTCUSDT", "1m", 60_000, 0), "before"),
        (lambda c: c.klines("BTCUSDT", "1m", -5, 0), "start_ms=-5"),
        (lambda c: c.klines("BTCUSDT", "1m", 0, 60_000, kind="continuousKlines"), "continuousKlines"),
        (lambda c: c.depth("BTCUSDT", limit=7), "depth limit 7"),
        (lambda c: c.agg_trades("BTCUSDT", start_ms=0, end_ms=3_600_000), "less than 1 hour"),
        (lambda c: c.agg_trades("BTCUSDT", limit=1001), "1001"),
        (lambda c: c.funding_rate("BTC USDT", 0, 1), "BTC USDT"),
    ],
)
def test_bad_input_fails_before_any_request(call, message):
    # Port 1 on loopback refuses connections: reaching the network would raise something else.
    with BinanceRestClient("http://127.0.0.1:1", max_retries=0) as client, \
            pytest.raises(InvalidInputError, match=message):
        call(client)


# ================================================================ against the simulator

class SimTime:
    """The simulator's frozen market clock as our clock; a wait advances it (recorded, never slept).

    Like real time, threads waiting together wake together: a sleep moves the clock to what this thread
    last read plus the wait, never by the sum of every thread's waits.
    """

    def __init__(self, server) -> None:
        self.server = server
        self.sleeps: list[float] = []
        self._seen = threading.local()
        self._lock = threading.Lock()

    def time(self) -> float:
        now = self.server.market.now_ms
        self._seen.ms = now
        return now / 1000

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            market = self.server.market
            target = getattr(self._seen, "ms", market.now_ms) + max(0, math.ceil(seconds * 1000))
            if target > market.now_ms:
                market.advance(target - market.now_ms)


def sim_client(server, *, limit: int = 2400, headroom: float = 0.1, **kwargs) -> tuple[BinanceRestClient, SimTime]:
    """A client whose budget and waits run on the simulator's clock."""
    clock = SimTime(server)
    budget = WeightBudget(limit, headroom, clock=clock.time, sleep=clock.sleep)
    kwargs.setdefault("sleep", clock.sleep)
    return BinanceRestClient(server.url, budget=budget, **kwargs), clock


def truth(server, symbol: str, interval: str, start_ms: int, end_ms: int, kind: str = "trade") -> bytes:
    """What the simulated exchange holds for [start_ms, end_ms), as archive-layout CSV."""
    market = server.market
    bars = market.klines(symbol, interval, start_ms, end_ms - 1, limit=100_000, kind=kind)
    rows = market.kline_rest_rows(market.spec(symbol), interval, bars, kind)
    return raw_klines_from_rest(rows, symbol, interval).csv


OUTAGE_DAY = utc_ms(2024, 2, 10)  # the simulator's default outage: 06:35 -> 07:00 UTC, every symbol


def test_klines_across_an_outage_equal_the_exchange(sim):
    client, _ = sim_client(sim)
    with client:
        raw = client.klines("BTCUSDT", "1m", OUTAGE_DAY, OUTAGE_DAY + 86_400_000)
    opens = raw.open_times_ms
    assert len(opens) == 1440 - 25
    assert opens == sorted(set(opens))
    assert utc_ms(2024, 2, 10, 6, 34) in opens and utc_ms(2024, 2, 10, 7, 0) in opens
    assert not any(utc_ms(2024, 2, 10, 6, 35) <= t < utc_ms(2024, 2, 10, 7, 0) for t in opens)
    assert raw.csv == truth(sim, "BTCUSDT", "1m", OUTAGE_DAY, OUTAGE_DAY + 86_400_000)
    assert raw.source == "rest"
    stats = sim.stats()
    assert stats["requests"]["/fapi/v1/klines"] == 3  # 499 + 499 + the rest, weight 2 each
    assert stats["total_weight"] == 3 * 2 + 1  # + one /time for the closed-bar check


def test_thirty_days_of_pages_asked_at_once_equal_the_exchange_at_the_same_weight(sim):
    """87 pages asked four at a time: the same bars as one page after the other, the same requests."""
    start, end = utc_ms(2024, 1, 20), utc_ms(2024, 2, 19)
    client, _ = sim_client(sim)
    with client:
        assert client.page_workers == 4
        raw = client.klines("BTCUSDT", "1m", start, end)
    assert len(raw) == 30 * 1440 - 25  # the outage on 2024-02-10
    assert raw.csv == truth(sim, "BTCUSDT", "1m", start, end)
    stats = sim.stats()
    pages = -(-30 * 1440 // KLINE_PAGE_LIMIT)
    assert stats["requests"]["/fapi/v1/klines"] == pages
    assert stats["total_weight"] == pages * 2 + 1


@pytest.mark.parametrize(
    ("start", "end", "bars"),
    [
        (utc_ms(2024, 2, 10, 6, 40), utc_ms(2024, 2, 10, 6, 55), 0),  # wholly inside the outage
        (utc_ms(2024, 2, 10, 6, 0), utc_ms(2024, 2, 10, 7, 30), 35 + 30),  # across it, one page
        (utc_ms(2024, 2, 9, 22), utc_ms(2024, 2, 10, 12), 14 * 60 - 25),  # the gap inside page 2
    ],
)
def test_klines_gap_edges(sim_session, start, end, bars):
    client, _ = sim_client(sim_session)
    with client:
        raw = client.klines("ETHUSDT", "1m", start, end)
    assert len(raw) == bars
    assert raw.csv == truth(sim_session, "ETHUSDT", "1m", start, end)


def test_klines_other_intervals_and_kinds(sim_session):
    client, _ = sim_client(sim_session)
    start, end = utc_ms(2024, 2, 9), utc_ms(2024, 2, 12)
    with client:
        hourly = client.klines("SOLUSDT", "1h", start, end)
        assert hourly.csv == truth(sim_session, "SOLUSDT", "1h", start, end)
        assert len(hourly) == 3 * 24  # the 25-minute outage leaves the 06:00 bar in place
        monthly = client.klines("BTCUSDT", "1M", utc_ms(2024, 1, 1), utc_ms(2024, 4, 1))
        assert [r[0] for r in monthly.text_rows()] == [str(utc_ms(2024, m, 1)) for m in (1, 2, 3)]
        for kind, sim_kind in (("markPriceKlines", "mark"), ("indexPriceKlines", "index"),
                               ("premiumIndexKlines", "premium")):
            got = client.klines("BTCUSDT", "5m", OUTAGE_DAY, OUTAGE_DAY + 86_400_000, kind=kind)
            assert got.csv == truth(sim_session, "BTCUSDT", "5m", OUTAGE_DAY, OUTAGE_DAY + 86_400_000, sim_kind)
            assert len(got) > 0


def test_klines_before_listing_start_at_listing(sim_session):
    client, _ = sim_client(sim_session)
    listing = utc_ms(2024, 2, 15, 8)  # NEWUSDT onboardDate
    with client:
        raw = client.klines("NEWUSDT", "1m", utc_ms(2024, 2, 14), utc_ms(2024, 2, 15, 9))
    assert raw.open_times_ms[0] == listing and len(raw) == 60


def test_in_progress_bar_left_out_unless_asked(sim):
    sim.set_now(utc_ms(2024, 4, 2, 12, 0) + 30_000)  # half way through the 12:00 bar
    client, _ = sim_client(sim)
    start, end = utc_ms(2024, 4, 2, 11), utc_ms(2024, 4, 2, 13)
    with client:
        closed = client.klines("BTCUSDT", "1m", start, end)
        with_open = client.klines("BTCUSDT", "1m", start, end, include_open=True)
    assert len(closed) == 60 and closed.open_times_ms[-1] == utc_ms(2024, 4, 2, 11, 59)
    assert len(with_open) == 61 and with_open.open_times_ms[-1] == utc_ms(2024, 4, 2, 12, 0)
    assert int(with_open.text_rows()[-1][6]) > sim.market.now_ms  # its close time is still ahead
    assert with_open.csv.startswith(closed.csv)


def test_weight_stays_under_a_low_limit_with_many_threads(request):
    """limit 100/min, 4 threads, ~1300 weight: the budget waits instead of drawing a 429 or a 418."""
    with SimServer(now="2024-04-02T12:00:00Z", weight_limit=100, rate_clock="market") as server:
        client, clock = sim_client(server, limit=100)
        results: dict[int, bytes] = {}

        def work(i: int) -> None:
            for _ in range(7):
                client.ticker_24hr()  # weight 40
            day = utc_ms(2024, 3, 1 + i)
            results[i] = client.klines("BTCUSDT", "1m", day, day + 86_400_000).csv  # 3 pages, weight 6

        with client:
            threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        stats = server.stats()
        assert stats["count_429"] == 0 and stats["count_418"] == 0
        assert stats["max_window_weight"] <= 100
        assert stats["total_weight"] >= 4 * (7 * 40 + 6)
        assert clock.sleeps  # it had to wait
        assert sum(clock.sleeps) < 3600  # ... and waited for windows, not for ever
        for i in range(4):
            day = utc_ms(2024, 3, 1 + i)
            assert results[i] == truth(server, "BTCUSDT", "1m", day, day + 86_400_000)


def test_budget_adopts_weight_used_by_another_process():
    with SimServer(now="2024-04-02T12:00:00Z", weight_limit=100, rate_clock="market") as server:
        with httpx.Client(base_url=server.url) as other:  # another process on the same IP
            for _ in range(2):
                assert other.get("/fapi/v1/ticker/24hr").status_code == 200  # 80 weight
        client, clock = sim_client(server, limit=100)
        with client:
            for _ in range(15):
                client.ping()
        stats = server.stats()
        assert stats["count_429"] == 0 and stats["max_window_weight"] <= 100
        assert clock.sleeps  # the header told it the minute was nearly spent


def test_429_retry_after_is_honoured():
    with SimServer(now="2024-04-02T12:00:10Z", weight_limit=10, rate_clock="market") as server:
        client, clock = sim_client(server)  # the client believes in 2400: only the server knows 10
        with client:
            for _ in range(12):
                client.ping()
        stats = server.stats()
        assert stats["count_429"] == 1 and stats["count_418"] == 0
        assert clock.sleeps == [pytest.approx(50.0)]  # Retry-After: the rest of the minute
        assert stats["requests"]["/fapi/v1/ping"] == 13


def test_funding_rate_requests_stay_under_their_own_limit():
    with SimServer(now="2024-04-02T12:00:00Z", funding_limit=5, rate_clock="market") as server:
        clock = SimTime(server)
        budget = WeightBudget(clock=clock.time, sleep=clock.sleep, funding_limit=5)
        with BinanceRestClient(server.url, budget=budget, sleep=clock.sleep) as client:
            for day in range(1, 11):
                rows = client.funding_rate("BTCUSDT", utc_ms(2024, 3, day), utc_ms(2024, 3, day + 1))
                assert len(rows) == 3
        stats = server.stats()
        assert stats["count_429"] == 0 and stats["requests"]["/fapi/v1/fundingRate"] == 10
        assert clock.sleeps  # 4 requests per 5 minutes (5 less the headroom)


def _ban_ip(server) -> None:
    with httpx.Client(base_url=server.url) as other:
        statuses = [other.get("/fapi/v1/ping").status_code for _ in range(14)]
    assert statuses[-1] == 418


def test_short_ip_ban_is_waited_out():
    with SimServer(now="2024-04-02T12:00:10Z", weight_limit=10, ban_after=1, ban_ms=90_000,
                   rate_clock="market") as server:
        _ban_ip(server)
        client, clock = sim_client(server, max_ban_wait_s=300)
        with client:
            assert client.server_time_ms() == server.market.now_ms
        assert clock.sleeps == [pytest.approx(90.0, abs=1.0)]


def test_long_ip_ban_raises_and_stops_sending():
    with SimServer(now="2024-04-02T12:00:10Z", weight_limit=10, ban_after=1, ban_ms=3_600_000,
                   rate_clock="market") as server:
        _ban_ip(server)
        sent = server.stats()["requests"]["/fapi/v1/ping"]
        client, clock = sim_client(server, max_ban_wait_s=300)
        with client:
            with pytest.raises(IPBannedError, match="max_ban_wait_s=300") as info:
                client.klines("BTCUSDT", "1m", OUTAGE_DAY, OUTAGE_DAY + 60_000)
            assert info.value.banned_until_ms == server.stats()["banned_until"]
            assert "symbol=BTCUSDT" in str(info.value)
            with pytest.raises(IPBannedError, match="request not sent"):
                client.ping()
        assert server.stats()["requests"]["/fapi/v1/ping"] == sent
        assert server.stats()["requests"]["/fapi/v1/klines"] == 1
        assert clock.sleeps == []


def test_5xx_burst_is_retried_with_jittered_backoff(sim):
    sim.set_faults(error_burst={"count": 3, "status": 503, "prefix": "/fapi/v1/klines"})
    client, clock = sim_client(sim, backoff_base_s=0.2, backoff_cap_s=10.0)
    with client:
        raw = client.klines("BTCUSDT", "1h", OUTAGE_DAY, OUTAGE_DAY + 86_400_000)
    assert raw.csv == truth(sim, "BTCUSDT", "1h", OUTAGE_DAY, OUTAGE_DAY + 86_400_000)
    assert sim.stats()["status_counts"]["503"] == 3
    assert len(clock.sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(clock.sleeps, (0.2, 0.4, 0.8), strict=True))


def test_5xx_that_persists_raises_server_error(sim):
    sim.set_faults(error_burst={"count": 10, "status": 500})
    client, clock = sim_client(sim, max_retries=2)
    with client, pytest.raises(BinanceServerError, match="after 3 attempts") as info:
        client.exchange_info()
    assert info.value.status == 500
    assert len(clock.sleeps) == 2


def test_timeouts_raise_unavailable_after_retries(sim):
    sim.set_faults(delay={"ms": 400, "prefix": "/fapi/v1/ping"})
    client, clock = sim_client(sim, timeout=0.1, max_retries=2)
    with client, pytest.raises(BinanceUnavailableError, match=r"/fapi/v1/ping: no answer after 3 attempts"):
        client.ping()
    assert len(clock.sleeps) == 2


def test_one_timeout_then_success(sim):
    sim.set_faults(delay={"ms": 400, "count": 1, "prefix": "/fapi/v1/time"})
    client, clock = sim_client(sim, timeout=0.2)
    with client:
        assert client.server_time_ms() == sim.market.now_ms
    assert len(clock.sleeps) == 1


def test_connection_refused_is_unavailable():
    sleeps: list[float] = []
    with BinanceRestClient("http://127.0.0.1:1", max_retries=1, sleep=sleeps.append,
                           budget=WeightBudget()) as client, \
            pytest.raises(BinanceUnavailableError, match="ConnectError"):
        client.ping()
    assert len(sleeps) == 1


def test_typed_errors_from_the_exchange_are_not_retried(sim):
    client, clock = sim_client(sim)
    with client:
        with pytest.raises(InvalidSymbolError, match="symbol=NOPEUSDT") as info:
            client.klines("NOPEUSDT", "1m", OUTAGE_DAY, OUTAGE_DAY + 60_000)
        assert (info.value.status, info.value.code) == (400, -1121)
        with pytest.raises(InvalidSymbolError):  # removed from exchangeInfo at its delisting
            client.funding_rate("GONEUSDT", utc_ms(2022, 1, 1), utc_ms(2022, 2, 1))
        # The client refuses bad intervals itself; send one anyway to check the server's -1120 is typed.
        with pytest.raises(InvalidIntervalError) as info:
            client._get("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "7m"})
        assert info.value.code == -1120
    assert sim.stats()["requests"]["/fapi/v1/klines"] == 2
    assert clock.sleeps == []


def test_funding_rate_pages_and_shift_to_4h(sim_session):
    client, _ = sim_client(sim_session)
    with client:
        btc = client.funding_rate("BTCUSDT", utc_ms(2023, 1, 1), utc_ms(2024, 4, 1))
        sol = client.funding_rate("SOLUSDT", utc_ms(2023, 9, 30), utc_ms(2023, 10, 3))
    times = [r["fundingTime"] for r in btc]
    assert len(btc) == (utc_ms(2024, 4, 1) - utc_ms(2023, 1, 1)) // (8 * 3_600_000)  # > 1000: two pages
    assert times == sorted(set(times))
    assert {round(t / 3_600_000) % 8 for t in times} == {0}  # on the 8 h grid, ms jitter allowed
    assert set(btc[0]) >= {"symbol", "fundingRate", "fundingTime", "markPrice"}
    sol_gaps = {round((b["fundingTime"] - a["fundingTime"]) / 3_600_000) for a, b in zip(sol, sol[1:], strict=False)}
    assert len(sol) == 3 + 6 + 6 and sol_gaps == {8, 4}  # 8 h until 2023-10-01, 4 h after


def test_agg_trades_range_pages_by_id(sim_session):
    client, _ = sim_client(sim_session)
    start, end = utc_ms(2024, 3, 1), utc_ms(2024, 3, 1, 0, 5)
    with client:
        trades = list(client.agg_trades_range("BTCUSDT", start, end))
        window = client.agg_trades("BTCUSDT", start_ms=start, end_ms=start + 59_999)
    ids = [t["a"] for t in trades]
    assert len(trades) > 1000
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # every aggregate trade, once, in order
    assert all(start <= t["T"] < end for t in trades)
    assert trades[: len(window)] == window[: len(trades)]


def test_simple_endpoints(sim_session):
    client, _ = sim_client(sim_session)
    with client:
        client.ping()
        assert client.server_time_ms() == sim_session.market.now_ms
        perps = client.perpetual_symbols()
        assert [p.symbol for p in perps] == ["BTCUSDT", "ETHUSDT", "NEWUSDT", "SOLUSDT"]
        assert client.premium_index("BTCUSDT")["symbol"] == "BTCUSDT"
        assert isinstance(client.premium_index(), list)
        assert client.ticker_24hr("ETHUSDT")["symbol"] == "ETHUSDT"
        book = client.depth("BTCUSDT", limit=5)
        assert len(book["bids"]) == 5 and "lastUpdateId" in book


def test_https_clients_share_one_verifying_context_and_plain_http_loads_none():
    import ssl

    from marketdata_assets.binance.tls import shared_tls_context, tls_for

    context = tls_for("https://fapi.binance.com")
    assert isinstance(context, ssl.SSLContext) and context is tls_for("https://data.binance.vision")
    assert context is shared_tls_context() and context.verify_mode == ssl.CERT_REQUIRED
    assert tls_for("http://127.0.0.1:8765") is False
