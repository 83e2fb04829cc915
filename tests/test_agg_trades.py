"""Aggregate trades against the local Binance, on PostgreSQL and SQLite (the `repo` fixture).

Measured here: a day from the archive and a day from REST both equal the simulator's trades exactly;
ids are continuous and the ledger counts them; a re-run writes nothing; a deleted trade fails the id
check and a reload repairs it; unsorted / duplicated archive rows are corrected and reported, and a
changed layout or a conflicting duplicate is a clear error.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from marketdata_assets.binance.agg_trades import AggTradesFormatError, id_holes, parse_agg_trades_csv
from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.ingest.agg_trades import AggTradeLoader, check_day
from marketdata_assets.storage.ledger import DayStatus

DAY = date(2024, 3, 5)
HEADER = b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"


def truth(rest, symbol: str, day: date, end_ms: int | None = None) -> list[dict]:
    start = day_start_ms(day)
    return list(rest.agg_trades_range(symbol, start, end_ms or start + DAY_MS))


def assert_equal(loader, symbol, day, expected, end_ms=None):
    start = day_start_ms(day)
    stored = loader.store.rows(symbol, start, end_ms or start + DAY_MS)
    assert len(stored) == len(expected) > 0
    assert [r["agg_id"] for r in stored] == [t["a"] for t in expected]
    assert [r["price"] for r in stored] == [Decimal(t["p"]) for t in expected]
    assert [r["quantity"] for r in stored] == [Decimal(t["q"]) for t in expected]
    assert [(r["first_trade_id"], r["last_trade_id"], r["transact_ms"], r["is_buyer_maker"]) for r in stored] == [
        (t["f"], t["l"], t["T"], t["m"]) for t in expected]


def test_archive_day_equals_the_simulator_and_a_rerun_writes_nothing(repo, clients):
    rest, archive = clients
    loader = AggTradeLoader(repo.engine, rest, archive)
    [result] = loader.load("NEWUSDT", [DAY])
    expected = truth(rest, "NEWUSDT", DAY)
    assert result.status == DayStatus.COMPLETE and result.sources == {"archive": len(expected)}
    assert len(result.archive_checksum or "") == 64 and result.corrections == [] and result.gaps == []
    assert (result.details["first_id"], result.details["last_id"]) == (expected[0]["a"], expected[-1]["a"])
    assert result.expected_rows == result.stored_rows == len(expected) == expected[-1]["a"] - expected[0]["a"] + 1
    assert_equal(loader, "NEWUSDT", DAY, expected)
    [ledger] = repo.get_ledger("agg_trades", "NEWUSDT", "")
    assert (ledger.status, ledger.actual_rows, ledger.expected_rows) == (
        DayStatus.COMPLETE, len(expected), len(expected))
    assert check_day(loader.store, "NEWUSDT", DAY, ledger)[0]
    assert loader.store.write([]) == 0
    again = AggTradeLoader(repo.engine, rest, archive).load("NEWUSDT", [DAY])
    assert again[0].stored_rows == len(expected)


def test_rest_only_day_and_today_partial(repo, clients):
    rest, _ = clients
    loader = AggTradeLoader(repo.engine, rest, None)
    [result] = loader.load("OLDUSDT", [date(2024, 2, 10)])
    expected = truth(rest, "OLDUSDT", date(2024, 2, 10))
    assert result.status == DayStatus.COMPLETE and result.sources == {"rest": len(expected)}
    assert_equal(loader, "OLDUSDT", date(2024, 2, 10), expected)
    [today] = loader.load("OLDUSDT", [date(2024, 2, 25)])  # after delisting: nothing to load
    assert today.status == "out_of_range"
    [partial] = loader.load("NEWUSDT", [date(2024, 4, 2)])  # the simulator's clock: 12:00
    assert partial.status == DayStatus.INCOMPLETE
    assert partial.stored_rows == len(truth(rest, "NEWUSDT", date(2024, 4, 2)))


def test_a_deleted_trade_fails_the_id_check_and_a_reload_repairs_it(repo, clients):
    rest, archive = clients
    loader = AggTradeLoader(repo.engine, rest, archive)
    [result] = loader.load("NEWUSDT", [DAY])
    middle, last = result.details["first_id"] + 100, result.details["last_id"]
    assert loader.store.delete("NEWUSDT", [middle, last]) == 2
    ledger = repo.get_ledger("agg_trades", "NEWUSDT", "")[0]
    passed, description, meta = check_day(loader.store, "NEWUSDT", DAY, ledger)
    assert not passed and "2 of" in description and meta["missing_inside"] == 1
    loader.load("NEWUSDT", [DAY])
    assert check_day(loader.store, "NEWUSDT", DAY, repo.get_ledger("agg_trades", "NEWUSDT", "")[0])[0]
    assert loader.store.ids("NEWUSDT", middle, middle) == [middle]


def test_unknown_symbol_is_a_clear_error(repo, clients):
    rest, archive = clients
    with pytest.raises(Exception, match="NOPEUSDT"):
        AggTradeLoader(repo.engine, rest, archive).load("NOPEUSDT", [DAY])


# ---- archive file corrections and errors (pure) ---------------------------------------------------
ROWS = [b"10,1.5,2,100,101,1000,true", b"11,1.6,1,102,102,1001,false", b"12,1.7,3,103,105,1002,true"]


def test_unsorted_and_duplicated_rows_are_corrected_and_reported():
    data = HEADER + b"\n".join([ROWS[2], ROWS[0], ROWS[1], ROWS[0]]) + b"\n"
    batch = parse_agg_trades_csv(data, "BTCUSDT", name="f.csv")
    assert batch.csv == b"\n".join(ROWS) + b"\n"
    assert batch.ids.tolist() == [10, 11, 12]
    assert any("sorted by agg_trade_id" in c for c in batch.corrections)
    assert any("1 exact duplicate row(s) dropped (agg_trade_id 10)" in c for c in batch.corrections)


def test_bad_files_are_clear_errors():
    with pytest.raises(AggTradesFormatError, match="f.csv: unexpected header"):
        parse_agg_trades_csv(b"id,price,qty,time\n" + ROWS[0] + b"\n", "BTCUSDT", name="f.csv")
    with pytest.raises(AggTradesFormatError, match="f.csv line 2: expected 7 fields"):
        parse_agg_trades_csv(ROWS[0] + b"\n" + ROWS[1] + b",extra\n", "BTCUSDT", name="f.csv")
    with pytest.raises(AggTradesFormatError, match="agg_trade_id 10 appears twice with different values"):
        parse_agg_trades_csv(ROWS[0] + b"\n" + b"10,9.9,2,100,101,1000,true\n", "BTCUSDT", name="f.csv")
    with pytest.raises(AggTradesFormatError, match="outside the file's day, e.g. agg_trade_id 12"):
        parse_agg_trades_csv(b"\n".join(ROWS) + b"\n", "BTCUSDT", name="f.csv", day_range=(1000, 1002))


def test_id_holes():
    import numpy as np

    assert id_holes(np.array([3, 4, 7, 9]), 1, 10) == [(1, 2), (5, 6), (8, 8), (10, 10)]
    assert id_holes(np.array([3, 4, 5])) == []
