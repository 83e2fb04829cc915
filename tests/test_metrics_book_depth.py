"""metrics (open interest, long/short) and bookDepth from the daily archive, and 24 h ticker snapshots.

Parsers on the real sample rows and on broken files (changed layout, another symbol, rows out of order and
twice, conflicting duplicates); loaders against the simulator on SQLite and PostgreSQL (stored rows equal
the archive's, a re-run changes nothing, expected rows per day); the Dagster assets: a removed metrics row
or book-depth snapshot fails its partition's check, the repair sensor requests exactly that partition and
the run repairs it; the ticker asset stores one consistent snapshot per symbol.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from marketdata_assets.binance.archive import archive_path
from marketdata_assets.binance.intervals import day_start_ms
from marketdata_assets.binance.market_stats import (
    ArchiveLayoutError,
    parse_book_depth_csv,
    parse_metrics_csv,
)
from marketdata_assets.ingest.market_stats import BOOK_DEPTH, METRICS, StatsLoader, check_day, window
from marketdata_assets.storage.ledger import DayStatus
from tests.support.datasets import repair_flow
from tests.support.samples import SAMPLES

DAY = date(2024, 3, 4)
START = day_start_ms(DAY)
ARCHIVE = SAMPLES / "archive"


def _sample(name: str) -> bytes:
    return (ARCHIVE / name).read_bytes()


# ----- parsers ----------------------------------------------------------------------------------------
def test_real_sample_rows_parse_exactly():
    start = day_start_ms(date(2026, 9, 12))
    metrics = parse_metrics_csv(_sample("um_metrics_BTCUSDT_2026-09-12_header_plus_first_row.csv"), "m.csv",
                                "BTCUSDT", start)
    assert metrics.rows == [{
        "create_time": start + 300_000, "sum_open_interest": Decimal("103453.1500000000000000"),
        "sum_open_interest_value": Decimal("7992877899.3611860000000000"),
        "count_toptrader_long_short_ratio": Decimal("1.62758097"),
        "sum_toptrader_long_short_ratio": Decimal("2.20204500"), "count_long_short_ratio": Decimal("1.58625258"),
        "sum_taker_long_short_vol_ratio": Decimal("1.01983000")}]
    depth = parse_book_depth_csv(_sample("um_bookDepth_BTCUSDT_2026-09-12_header_plus_rows.csv"), "d.csv", start)
    assert [(r["snapshot_time"] - start, str(r["percentage"]), str(r["depth"])) for r in depth.rows] == [
        (4000, "-5.00", "8993.20000000"), (4000, "-4.00", "8295.82900000"), (4000, "-3.00", "7466.34000000")]
    assert metrics.corrections == depth.corrections == []


METRICS_HEAD = ("create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
                "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n")


def _metrics_row(hhmm: str, oi: str = "1.5", symbol: str = "BTCUSDT") -> str:
    return f"2024-03-04 {hhmm}:00,{symbol},{oi},2.5,1.1,1.2,1.3,0.9\n"


def test_metrics_out_of_order_and_twice_are_sorted_and_deduplicated_with_corrections():
    body = METRICS_HEAD + "".join(_metrics_row(t) for t in ("00:10", "00:05", "00:15", "00:05", "00:10"))
    parsed = parse_metrics_csv(body.encode(), "BTCUSDT-metrics-2024-03-04.zip", "BTCUSDT", START)
    assert [r["create_time"] - START for r in parsed.rows] == [300_000, 600_000, 900_000]
    assert parsed.corrections == [
        "BTCUSDT-metrics-2024-03-04.zip: rows not in chronological order: sorted by create_time",
        "BTCUSDT-metrics-2024-03-04.zip: 2 exact duplicate row(s) dropped"]


@pytest.mark.parametrize(("body", "message"), [
    (METRICS_HEAD.replace("sum_open_interest,", "open_interest,") + _metrics_row("00:05"), "changed column layout"),
    (METRICS_HEAD + _metrics_row("00:05").replace(",0.9\n", "\n"), "7 fields, expected 8"),
    (METRICS_HEAD + _metrics_row("00:05", symbol="ETHUSDT"), "a row for symbol 'ETHUSDT'"),
    (METRICS_HEAD + _metrics_row("00:05") + _metrics_row("00:05", oi="9.9"), "two different rows"),
    (METRICS_HEAD + _metrics_row("00:00"), "outside the file's day"),
    (METRICS_HEAD + _metrics_row("00:05", oi="abc"), "sum_open_interest='abc' is not a decimal"),
])
def test_bad_metrics_files_fail_naming_the_file(body, message):
    with pytest.raises(ArchiveLayoutError, match=message) as err:
        parse_metrics_csv(body.encode(), "BTCUSDT-metrics-2024-03-04.zip", "BTCUSDT", START)
    assert "BTCUSDT-metrics-2024-03-04.zip" in str(err.value)


def test_book_depth_changed_layout_fails_and_duplicates_are_reported():
    with pytest.raises(ArchiveLayoutError, match="changed column layout"):
        parse_book_depth_csv(b"timestamp,percentage,depth,notional,extra\n", "d.zip", START)
    body = ("timestamp,percentage,depth,notional\n2024-03-04 00:00:34,1,2.0,3.0\n"
            "2024-03-04 00:00:04,-1.00,2.0,3.0\n2024-03-04 00:00:04,-1,2.0,3.0\n")
    parsed = parse_book_depth_csv(body.encode(), "d.zip", START)
    assert [(r["snapshot_time"] - START, str(r["percentage"])) for r in parsed.rows] == [(4000, "-1.00"),
                                                                                          (34000, "1.00")]
    assert len(parsed.corrections) == 2


# ----- loaders against the simulator ----------------------------------------------------------------------
@pytest.mark.parametrize("dataset", [METRICS, BOOK_DEPTH], ids=lambda d: d.name)
def test_day_equals_the_archive_and_a_rerun_changes_nothing(repo, clients, dataset):
    rest, archive = clients
    loader = StatsLoader(repo.engine, rest, archive, dataset=dataset)
    [result] = loader.load("BTCUSDT", [DAY])
    assert result.status == DayStatus.COMPLETE and result.gaps == [] and result.corrections == []
    if dataset is METRICS:
        assert result.stored_rows == result.expected_rows == 288
    else:
        assert result.details["stamps"] == 2880 and result.details["bands"] == 10
        assert result.stored_rows == result.expected_rows == 28800
    truth = archive.fetch(archive_path(dataset.data_type, "BTCUSDT", DAY))
    parse = (lambda b: parse_metrics_csv(b, "x", "BTCUSDT", START)) if dataset is METRICS else (
        lambda b: parse_book_depth_csv(b, "x", START))
    expected = parse(truth.csv_bytes).rows
    stored = _stored(repo.engine, dataset)
    assert stored == expected  # every row, exact decimals
    ledger = repo.get_ledger(dataset.name, "BTCUSDT", "", DAY, DAY)[0]
    assert (ledger.status, ledger.actual_rows, ledger.archive_checksum) == (
        "complete", result.stored_rows, truth.sha256)
    info = loader.symbol_info("BTCUSDT")
    assert check_day(dataset, loader.store, "BTCUSDT", DAY, ledger, *window(dataset, info, DAY, loader.now_ms()))[0] \
        == "passed"

    [again] = loader.load("BTCUSDT", [DAY])
    assert again.stored_rows == result.stored_rows and _stored(repo.engine, dataset) == expected


def _stored(engine, dataset) -> list[dict]:
    """Stored rows in the parser's shape (times in ms), sorted by key as the parser sorts them."""
    import sqlalchemy as sa

    t = dataset.table
    skip = {"symbol", "source", "ingested_at"}
    with engine.connect() as conn:
        rows = [{k: v for k, v in m.items() if k not in skip}
                for m in conn.execute(sa.select(t).where(t.c.symbol == "BTCUSDT")).mappings()]
    for row in rows:
        row[dataset.time_column] = int(row[dataset.time_column].timestamp() * 1000)
    return sorted(rows, key=lambda r: (r[dataset.time_column], r.get("percentage", 0)))


def test_days_before_listing_are_out_of_range_and_unknown_symbols_are_refused(repo, clients):
    from marketdata_assets.binance.intervals import InvalidInputError

    rest, archive = clients
    loader = StatsLoader(repo.engine, rest, archive, dataset=METRICS)
    [result] = loader.load("BTCUSDT", [date(2019, 1, 1)])
    assert result.status == DayStatus.OUT_OF_RANGE and result.stored_rows == 0
    with pytest.raises(InvalidInputError, match="NOPEUSDT"):
        loader.load("NOPEUSDT", [DAY])


# ----- Dagster: assets, checks, repair ----------------------------------------------------------------------
def test_removed_metrics_row_is_found_and_repaired_by_the_sensor(defs_config, dg_instance, store_resource):
    import dagster as dg

    from marketdata_assets.defs import build_definitions
    from marketdata_assets.storage.market_stats_store import MarketStatsStore

    defs = build_definitions(defs_config, store_resource)

    def remove():
        store = MarketStatsStore(store_resource.runtime().engine)
        assert store.delete(METRICS.table, "create_time", "BTCUSDT", START + 3_600_000, START + 3_600_001) == 1

    failed = repair_flow(defs, dg_instance, store_resource, dg.AssetKey(METRICS.name), f"{DAY}|BTCUSDT",
                         "gap_repair_metrics", remove, ("metrics", ""))
    assert failed["stored_rows"] == 287 and failed["loaded_rows"] == 288


def test_removed_book_depth_snapshots_are_found_and_repaired_by_the_sensor(defs_config, dg_instance, md_resource):
    import dagster as dg

    from marketdata_assets.defs import build_definitions
    from marketdata_assets.storage.market_stats_store import MarketStatsStore

    defs = build_definitions(defs_config, md_resource)

    def remove():  # five minutes of snapshots: a stretch without rows
        store = MarketStatsStore(md_resource.runtime().engine)
        assert store.delete(BOOK_DEPTH.table, "snapshot_time", "BTCUSDT", START + 600_000, START + 900_000) == 100

    failed = repair_flow(defs, dg_instance, md_resource, dg.AssetKey(BOOK_DEPTH.name), f"{DAY}|BTCUSDT",
                         "gap_repair_book_depth", remove, ("book_depth", ""))
    assert failed["missing_stretches"] == 1


def test_ticker_asset_stores_one_consistent_snapshot_per_symbol(md_defs, dg_instance, md_resource):
    import dagster as dg

    from marketdata_assets.defs.market_stats.ticker import TICKER_KEY, ticker_24h_check
    from marketdata_assets.storage.tables_stream import ticker_24h

    result = dg.materialize([md_defs.get_assets_def(TICKER_KEY), ticker_24h_check], instance=dg_instance,
                            resources={"marketdata": md_resource})
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["symbols"].value == 2
    with md_resource.runtime().engine.connect() as conn:
        rows = conn.execute(ticker_24h.select()).mappings().all()
    assert sorted(r["symbol"] for r in rows) == ["BTCUSDT", "ETHUSDT"]
    assert all(int(r["event_time"].timestamp() * 1000) == 1712059200000 for r in rows)  # the sim's frozen now
    assert all(r["trade_count"] > 0 for r in rows)
