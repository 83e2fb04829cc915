"""SimMarket: determinism, exact aggregation, listing/outage bounds, the bar in progress, trade ids."""

from __future__ import annotations

import numpy as np
import pytest

from marketdata_sim import SimMarket
from marketdata_sim.derived import agg_trades
from marketdata_sim.generate import BAR_COLUMNS
from marketdata_sim.market import aggregate
from marketdata_sim.symbols import utc_ms

NOW = "2024-04-02T12:00:00Z"
DAY = 86_400_000


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return SimMarket(now=NOW)


def _equal(a: dict, b: dict) -> None:
    for c in BAR_COLUMNS:
        np.testing.assert_array_equal(a[c], b[c], err_msg=c)


def test_same_seed_same_data_other_seed_differs(market: SimMarket) -> None:
    spec = market.spec("BTCUSDT")
    lo = utc_ms("2024-01-05")
    again = SimMarket(now=NOW).bars(spec, "1m", lo, lo + DAY)
    _equal(market.bars(spec, "1m", lo, lo + DAY), again)
    other = SimMarket(now=NOW, seed=1).bars(spec, "1m", lo, lo + DAY)
    assert not np.array_equal(other["close"], again["close"])


@pytest.mark.parametrize("interval", ["3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"])
def test_intraday_intervals_aggregate_1m_exactly(market: SimMarket, interval: str) -> None:
    spec = market.spec("SOLUSDT")
    lo, hi = utc_ms("2024-02-09"), utc_ms("2024-02-12")  # spans the default outage on 02-10
    minutes = market.bars(spec, "1m", lo, hi)
    higher = market.bars(spec, interval, lo, hi)
    _equal(higher, aggregate(minutes, interval))
    # open first, close last, max, min, sums: check one bar by hand
    step = {"3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360, "8h": 480,
            "12h": 720, "1d": 1440}[interval] * 60_000
    sel = (minutes["open_time"] >= higher["open_time"][1]) & (minutes["open_time"] < higher["open_time"][1] + step)
    assert higher["open"][1] == minutes["open"][sel][0]
    assert higher["close"][1] == minutes["close"][sel][-1]
    assert higher["high"][1] == minutes["high"][sel].max()
    assert higher["volume"][1] == minutes["volume"][sel].sum()


@pytest.mark.parametrize("interval", ["3d", "1w", "1M"])
def test_multi_day_intervals_aggregate_days(market: SimMarket, interval: str) -> None:
    spec = market.spec("ETHUSDT")
    lo, hi = utc_ms("2023-10-01"), utc_ms("2024-01-01")
    days = market.bars(spec, "1d", lo, hi)
    got = market.klines("ETHUSDT", interval, lo, hi - 1, 1500)
    inside = got["open_time"] >= lo
    expected = aggregate(days, interval)
    # only buckets wholly inside [lo, hi)
    full = np.isin(expected["open_time"], got["open_time"][inside])
    for c in ("open", "high", "low", "volume", "quote", "count"):
        np.testing.assert_array_equal(got[c][inside][: full.sum() - 1], expected[c][full][: full.sum() - 1])


def test_outage_minutes_are_missing_and_higher_bar_exists_if_any_minute(market: SimMarket) -> None:
    spec = market.spec("BTCUSDT")
    lo = utc_ms("2024-02-10 06:00")
    minutes = market.bars(spec, "1m", lo, lo + 3_600_000)
    assert len(minutes["open_time"]) == 60 - 25
    assert minutes["open_time"].max() == utc_ms("2024-02-10 06:34")
    five = market.bars(spec, "5m", lo, lo + 3_600_000)
    assert utc_ms("2024-02-10 06:35") not in five["open_time"].tolist()
    assert len(market.bars(spec, "1h", lo, lo + 3_600_000)["open_time"]) == 1


def test_listing_and_delisting_bounds(market: SimMarket) -> None:
    new = market.klines("NEWUSDT", "1m", 0, None, 3)
    assert new["open_time"][0] == utc_ms("2024-02-15 08:00")
    old = market.spec("OLDUSDT")
    bars = market.klines("OLDUSDT", "1m", None, None, 2)
    assert bars["open_time"][-1] == old.delist_ms - 60_000
    assert market.klines("OLDUSDT", "1m", old.delist_ms, None, 10)["open_time"].size == 0


def test_illiquid_symbol_has_zero_volume_bars_with_flat_prices(market: SimMarket) -> None:
    spec = market.spec("OLDUSDT")
    bars = market.bars(spec, "1m", utc_ms("2024-01-10"), utc_ms("2024-01-11"))
    zero = bars["volume"] == 0
    assert 0.1 < zero.mean() < 0.5
    assert (bars["count"][zero] == 0).all()
    assert (bars["open"][zero] == bars["close"][zero]).all() and (bars["high"][zero] == bars["low"][zero]).all()
    assert (bars["count"][~zero] >= 1).all()


def test_days_join_and_prices_on_tick_grid(market: SimMarket) -> None:
    spec = market.spec("BTCUSDT")
    bars = market.bars(spec, "1m", utc_ms("2024-03-01"), utc_ms("2024-03-03"))
    i = int(np.searchsorted(bars["open_time"], utc_ms("2024-03-02")))
    assert bars["close"][i - 1] == bars["open"][i]
    assert (bars["close"] % spec.tick_units == 0).all()
    assert (bars["high"] >= np.maximum(bars["open"], bars["close"])).all()
    assert (bars["low"] <= np.minimum(bars["open"], bars["close"])).all()
    assert (bars["tbv"] <= bars["volume"]).all() and (bars["tbq"] <= bars["quote"]).all()


def test_bars_after_now_do_not_exist_except_the_one_in_progress() -> None:
    m = SimMarket(now="2024-04-02T12:00:30Z")
    spec = m.spec("BTCUSDT")
    bars = m.klines("BTCUSDT", "1m", None, None, 3)
    assert bars["open_time"][-1] == utc_ms("2024-04-02 12:00")
    full = m.day_bars(spec, utc_ms("2024-04-02") // DAY)
    i = int(np.searchsorted(full["open_time"], utc_ms("2024-04-02 12:00")))
    assert bars["volume"][-1] == full["volume"][i] // 2  # half the minute has passed
    assert m.klines("BTCUSDT", "1m", utc_ms("2024-04-02 12:01"), None, 10)["open_time"].size == 0
    hour = m.klines("BTCUSDT", "1h", None, None, 1)
    assert hour["open_time"][0] == utc_ms("2024-04-02 12:00") and hour["volume"][0] == bars["volume"][-1]
    m.advance(60_000)
    assert m.klines("BTCUSDT", "1m", None, None, 2)["volume"][0] == full["volume"][i]


def test_trade_ids_consecutive_across_days_and_agg_trades_match_bars(market: SimMarket) -> None:
    spec = market.spec("NEWUSDT")
    d1 = market.day_bars(spec, utc_ms("2024-03-01") // DAY)
    d2 = market.day_bars(spec, utc_ms("2024-03-02") // DAY)
    assert d2["trade_id0"][0] == d1["trade_id0"][-1] + d1["count"][-1]
    assert d1["count"].sum() == spec.trades_per_day
    minute = int(d1["open_time"][100])
    rows = agg_trades(market, "NEWUSDT", start_ms=minute, end_ms=minute + 59_999, limit=1000)
    assert [r["a"] for r in rows] == list(range(rows[0]["a"], rows[0]["a"] + len(rows)))
    assert rows[-1]["l"] - rows[0]["f"] + 1 == d1["count"][100]
    assert sum(int(r["q"]) for r in rows) == d1["volume"][100]
    by_id = agg_trades(market, "NEWUSDT", from_id=rows[3]["a"], limit=2)
    assert by_id == rows[3:5]
