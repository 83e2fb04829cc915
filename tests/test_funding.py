"""Funding rates against the local Binance, on PostgreSQL and SQLite (the `repo` fixture).

Measured here: stored events equal the simulator's (exact rates, hour-aligned times, the archive's interval);
SOLUSDT's 8 h -> 4 h change on 2023-10-01 passes the check; a deleted event fails it and a reload repairs
it; a month not yet archived comes from REST with inferred intervals; archive files are parsed strictly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from marketdata_assets.binance.archive import ArchiveClient
from marketdata_assets.binance.funding import HOUR_MS, FundingFormatError, align_hour, parse_archive_csv
from marketdata_assets.binance.intervals import DAY_MS, day_start_ms, days_between
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.ingest.funding import FundingLoader
from marketdata_assets.storage.tables_funding import funding_rates
from marketdata_assets.validation.funding_check import missing_funding
from tests.support.samples import SAMPLES as SAMPLES_ROOT

SAMPLES = str(SAMPLES_ROOT / "archive")


@pytest.fixture
def loader(sim_session, repo):
    rest = BinanceRestClient(sim_session.url)
    archive = ArchiveClient(sim_session.url)
    yield FundingLoader(repo.engine, rest, archive)
    rest.close()
    archive.close()


def stored(repo, symbol: str) -> list[dict]:
    with repo.engine.connect() as conn:
        rows = conn.execute(sa.select(funding_rates).where(funding_rates.c.symbol == symbol)
                            .order_by(funding_rates.c.funding_time)).mappings().all()
    return [dict(r) for r in rows]


def test_sol_8h_to_4h_change_passes_and_rows_equal_the_simulator(loader, repo, sim_session):
    days = days_between(date(2023, 9, 30), date(2023, 10, 2))
    results = loader.load("SOLUSDT", days)
    assert [r.gaps for r in results] == [[], [], []]
    assert [r.stored_rows for r in results] == [3, 6, 6]
    assert all(r.sources == {"archive": r.stored_rows} for r in results)
    rows = stored(repo, "SOLUSDT")
    lo, hi = day_start_ms(days[0]), day_start_ms(days[-1]) + DAY_MS
    with BinanceRestClient(sim_session.url) as rest:
        truth = rest.funding_rate("SOLUSDT", lo, hi)
    assert [int(r["funding_time"].timestamp() * 1000) for r in rows] == [align_hour(t["fundingTime"]) for t in truth]
    assert [int(r["calc_time"].timestamp() * 1000) for r in rows] == [t["fundingTime"] for t in truth]
    assert [r["funding_rate"] for r in rows] == [Decimal(t["fundingRate"]) for t in truth]
    assert [r["mark_price"] for r in rows] == [Decimal(t["markPrice"]) for t in truth]
    assert [r["funding_interval_hours"] for r in rows] == [8, 8, 8] + [4] * 12
    ledger = repo.get_ledger("funding_rates", "SOLUSDT")
    assert [(row.status, row.actual_rows, row.expected_rows) for row in ledger] == [
        ("complete", 3, 3), ("complete", 6, 6), ("complete", 6, 6)]


def test_a_deleted_event_fails_the_check_and_a_reload_repairs_it(loader, repo):
    day = date(2024, 3, 1)
    assert [r.gaps for r in loader.load("BTCUSDT", [day])] == [[]]
    gone = day_start_ms(day) + 8 * HOUR_MS
    with repo.engine.begin() as conn:
        deleted = conn.execute(sa.delete(funding_rates).where(
            funding_rates.c.symbol == "BTCUSDT",
            funding_rates.c.funding_time == datetime.fromtimestamp(gone / 1000, UTC))).rowcount
    assert deleted == 1
    assert loader.store.check_day("BTCUSDT", day, loader.now_ms()) == [gone]
    again = loader.load("BTCUSDT", [day])
    assert again[0].gaps == [] and again[0].stored_rows == 3
    assert loader.store.check_day("BTCUSDT", day, loader.now_ms()) == []


def test_a_month_not_archived_yet_comes_from_rest_with_inferred_intervals(loader, repo):
    results = loader.load("SOLUSDT", [date(2024, 4, 1)])
    assert results[0].sources == {"rest": 6} and results[0].gaps == []
    assert {r["funding_interval_hours"] for r in stored(repo, "SOLUSDT")} == {4}


def test_the_check_rules():
    h = HOUR_MS
    every8 = [(t * h, 8) for t in (0, 8, 16)]
    assert missing_funding(every8, 0, 24 * h, previous=(-8 * h, 8)) == []
    assert missing_funding([every8[0], every8[2]], 0, 24 * h, previous=(-8 * h, 8)) == [8 * h]
    change = [(0, 8), (8 * h, 8), (16 * h, 4), (20 * h, 4)]
    assert missing_funding(change, 0, 24 * h, previous=(-8 * h, 8)) == []
    to_one = [(0, 4), (4 * h, 1), (5 * h, 1)]
    assert missing_funding(to_one, 0, 6 * h) == []
    assert missing_funding([(0, 8)], 0, 24 * h) == [8 * h, 16 * h]  # the day ended without them
    assert missing_funding([], 0, 24 * h) == []  # nothing before: e.g. before listing


def test_archive_files_are_parsed_strictly():
    with open(f"{SAMPLES}/um_fundingRate_monthly_HEADER_ONLY.csv", "rb") as f:
        assert parse_archive_csv(f.read(), "real header", "BTCUSDT") == []
    rows = parse_archive_csv(b"calc_time,funding_interval_hours,last_funding_rate\n1696118400007,4,0.00010000\n",
                             "x.zip", "SOLUSDT")
    assert (rows[0].funding_ms, rows[0].calc_ms, rows[0].rate, rows[0].interval_h) == (
        1696118400000, 1696118400007, "0.00010000", 4)
    with pytest.raises(FundingFormatError, match="x.zip: unexpected header"):
        parse_archive_csv(b"calc_time,symbol,rate\n", "x.zip", "BTCUSDT")
    with pytest.raises(FundingFormatError, match="x.zip row 1: 4 fields"):
        parse_archive_csv(b"1696118400007,4,0.0001,BTCUSDT\n", "x.zip", "BTCUSDT")
    with pytest.raises(FundingFormatError, match="interval 3 h"):
        parse_archive_csv(b"1696118400007,3,0.0001\n", "x.zip", "BTCUSDT")


# A ledger that refuses every write, made for real in the test's own schema / file (dropped with it).
REFUSE_LEDGER = {
    "postgresql": [
        "CREATE FUNCTION refuse_ledger() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'ledger refused'; END $$",
        "CREATE TRIGGER refuse_ledger BEFORE INSERT OR UPDATE ON partition_ledger "
        "FOR EACH ROW EXECUTE FUNCTION refuse_ledger()",
    ],
    "sqlite": [
        "CREATE TRIGGER refuse_ledger BEFORE INSERT ON partition_ledger "
        "BEGIN SELECT RAISE(ABORT, 'ledger refused'); END",
    ],
}


def test_events_and_ledger_rows_commit_together(loader, repo):
    with repo.engine.begin() as conn:
        for statement in REFUSE_LEDGER[repo.engine.dialect.name]:
            conn.execute(sa.text(statement))
    with pytest.raises(sa.exc.DBAPIError, match="ledger refused"):
        loader.load("SOLUSDT", days_between(date(2023, 9, 30), date(2023, 10, 2)))
    assert stored(repo, "SOLUSDT") == []  # the events went with the refused ledger rows
    assert repo.get_ledger("funding_rates", "SOLUSDT") == []
