"""BinanceRestClient and the typed errors.

First the parts that need no server (weights, page planning, error typing from real payloads, input
validation), then behaviour against the simulator (`sim` fixture).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from marketdata_assets.binance.errors import (
    BinanceAPIError,
    BinanceServerError,
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
from marketdata_assets.binance.rest import (
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

REST_SAMPLES = Path("/work/shared/binance/samples/rest")
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
