"""Mark price, index price and premium index klines against the local Binance, on PostgreSQL and SQLite.

Measured here: each kind's stored bars equal the simulator's (exact decimals, volumes "0"), in its own
table and ledger dataset, leaving `kline_data` untouched; the premium index may be negative and still
validates; the archive day and a REST-only day agree; a second run changes no row; a deleted bar is found.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from marketdata_assets.binance.archive import ArchiveClient
from marketdata_assets.binance.intervals import DAY_MS, InvalidInputError, day_start_ms, days_between
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.ingest.klines import KIND_DATASETS, KlineLoader
from marketdata_assets.storage.ledger import DayStatus
from marketdata_assets.storage.tables_price_klines import kline_table

SIM_KIND = {"markPriceKlines": "mark", "indexPriceKlines": "index", "premiumIndexKlines": "premium"}
KINDS = tuple(SIM_KIND)


@pytest.fixture
def clients(sim_session):
    rest = BinanceRestClient(sim_session.url)
    archive = ArchiveClient(sim_session.url, listing_url=f"{sim_session.url}/data.binance.vision")
    yield rest, archive
    rest.close()
    archive.close()


def truth(sim, kind: str, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[list]:
    spec = sim.market.spec(symbol)
    bars = sim.market.klines(symbol, interval, start_ms, end_ms - 1, limit=10**7, kind=SIM_KIND[kind])
    return sim.market.kline_rest_rows(spec, interval, bars, SIM_KIND[kind])


def assert_equal_to_truth(repo, sim, kind, symbol, interval, start_ms, end_ms) -> int:
    expected = truth(sim, kind, symbol, interval, start_ms, end_ms)
    stored = repo.get_klines(symbol, interval, start_ms, end_ms, exact=True, kind=kind)
    assert len(stored) == len(expected) > 0
    assert [int(t.timestamp() * 1000) for t in stored["open_time"]] == [int(r[0]) for r in expected]
    for name, index in {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5, "quote_volume": 7}.items():
        assert list(stored[name]) == [Decimal(r[index]) for r in expected], name
    assert list(stored["trades_count"]) == [int(r[8]) for r in expected]
    assert set(stored["volume"]) == {Decimal(0)}
    return len(expected)


@pytest.mark.parametrize("kind", KINDS)
def test_archive_days_equal_the_simulator_in_their_own_table(kind, repo, sim_session, clients):
    rest, archive = clients
    loader = KlineLoader(repo.engine, rest, archive, interval="1h", kind=kind)
    days = days_between(date(2024, 3, 4), date(2024, 3, 5))
    results = loader.load("BTCUSDT", days)
    assert [r.status for r in results] == [DayStatus.COMPLETE, DayStatus.COMPLETE]
    assert all(r.sources == {"archive": 24} and len(r.archive_checksum or "") == 64 for r in results)
    lo, hi = day_start_ms(days[0]), day_start_ms(days[-1]) + DAY_MS
    assert assert_equal_to_truth(repo, sim_session, kind, "BTCUSDT", "1h", lo, hi) == 48
    assert repo.count_klines(kind="klines") == 0  # trade klines untouched
    assert repo.count_klines("BTCUSDT", "1h", kind=kind) == 48
    ledger = repo.get_ledger(KIND_DATASETS[kind], "BTCUSDT", "1h")
    assert [(r.day, r.status, r.actual_rows) for r in ledger] == [(d, DayStatus.COMPLETE, 24) for d in days]
    assert repo.get_ledger("klines", "BTCUSDT", "1h") == []
    again = KlineLoader(repo.engine, rest, archive, interval="1h", kind=kind)
    again.load("BTCUSDT", days, force=True)
    assert again.written["inserted"] == again.written["updated"] == 0


def test_premium_index_may_be_negative_and_rest_fills_a_day_without_archive(repo, sim_session, clients):
    rest, archive = clients
    loader = KlineLoader(repo.engine, rest, None, interval="5m", kind="premiumIndexKlines")  # no archive: REST only
    day = date(2024, 3, 6)
    [result] = loader.load("ETHUSDT", [day])
    assert result.status == DayStatus.COMPLETE and result.sources == {"rest": 288}
    lo = day_start_ms(day)
    assert assert_equal_to_truth(repo, sim_session, "premiumIndexKlines", "ETHUSDT", "5m", lo, lo + DAY_MS) == 288
    frame = repo.get_klines("ETHUSDT", "5m", lo, lo + DAY_MS, kind="premiumIndexKlines")
    assert (frame["low"] < 0).any()  # a signed series: the positive-price rule of trade klines does not apply


def test_today_is_partial_and_a_deleted_bar_is_found(repo, sim_session, clients):
    rest, archive = clients
    loader = KlineLoader(repo.engine, rest, archive, interval="1h", kind="indexPriceKlines")
    [result] = loader.load("SOLUSDT", [date(2024, 4, 2)])  # the simulator's clock: 12:00
    assert result.status == DayStatus.INCOMPLETE and result.stored_rows == 12
    lo = day_start_ms(date(2024, 4, 2))
    assert repo.delete_klines("SOLUSDT", "1h", lo + 3_600_000, lo + 2 * 3_600_000, kind="indexPriceKlines") == 1
    gaps = repo.find_gaps("SOLUSDT", "1h", lo, lo + 12 * 3_600_000, kind="indexPriceKlines")
    assert [(g.start_ms, g.end_ms) for g in gaps] == [(lo + 3_600_000, lo + 2 * 3_600_000)]


def test_unknown_kind_is_a_clear_error(repo, clients):
    rest, archive = clients
    with pytest.raises(InvalidInputError, match="unknown kline kind 'fooKlines'"):
        KlineLoader(repo.engine, rest, archive, interval="1h", kind="fooKlines")
    with pytest.raises(InvalidInputError, match="unknown kline kind"):
        kline_table("bar")
