"""Kline assets and their checks against the simulator: range runs attribute every day to its partition.

Real Dagster instance (`instance_for_test`), real SQLite store, the simulator as Binance.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from marketdata_assets.defs.constants import kline_asset_key
from tests.support.defs import check_results, partition_metadata, run_checks

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def _run(defs, instance, resource, interval, *, pk=None, start=None, end=None, raise_on_error=True):
    key = kline_asset_key(interval)
    checks = [c for c in defs.asset_checks if any(k.asset_key == key for k in c.check_keys)]
    tags = {RANGE_START: start, RANGE_END: end} if start else None
    return dg.materialize(
        [defs.get_assets_def(key), *checks], partition_key=pk, tags=tags, instance=instance,
        resources={"marketdata": resource}, raise_on_error=raise_on_error,
    )


def _observations(instance, interval):
    """Each partition's own figures, as its latest materialization carries them."""
    return partition_metadata(instance, kline_asset_key(interval))


def test_range_run_reports_each_day_on_its_own_partition(md_defs, dg_instance, md_resource):
    result = _run(md_defs, dg_instance, md_resource, "1h", start="2024-03-01|BTCUSDT", end="2024-03-03|BTCUSDT")
    assert result.success
    days = ["2024-03-01|BTCUSDT", "2024-03-02|BTCUSDT", "2024-03-03|BTCUSDT"]
    materialized = {e.event_specific_data.materialization.partition for e in result.get_asset_materialization_events()}
    assert materialized == set(days)

    observed = _observations(dg_instance, "1h")
    assert set(observed) == set(days)
    # each partition's latest materialization is that day's own: its first bar, its preview
    middle = observed[days[1]]
    assert middle["first_open_time"].value == datetime(2024, 3, 2, tzinfo=UTC).timestamp()
    assert middle["last_open_time"].value == datetime(2024, 3, 2, 23, tzinfo=UTC).timestamp()
    assert "2024-03-02 00:00:00" in middle["preview"].value and "2024-03-03" not in middle["preview"].value
    for meta in observed.values():
        assert meta["dagster/row_count"].value == 24
        assert meta["status"].value == "complete"
        assert meta["sources"].value == {"archive": 24}
        assert len(meta["archive_checksum"].value) == 64

    evaluations = check_results(result)
    assert {p for _, p in evaluations} == set(days)
    assert {n for n, _ in evaluations} == {"rows", "gaps", "continuity", "agrees_with_1m", "audit"}
    assert all(e.passed for e in evaluations.values())
    # the row check's three parts (schema, duplicates, OHLC invariants) each have their verdict
    for part in ("schema", "duplicates", "ohlc"):
        assert evaluations[("rows", days[2])].metadata[f"{part}_status"].value == "passed"
    # day 2 and 3 are compared with the previous day's last bar, day 1's previous day is not stored
    assert evaluations[("continuity", days[1])].metadata["compared"].value is True
    assert evaluations[("continuity", days[0])].metadata["compared"].value is False

    # Dagster's own per-partition check records (what the UI shows) carry each day
    infos = dg_instance.event_log_storage.get_asset_check_partition_info(
        [dg.AssetCheckKey(kline_asset_key("1h"), "gaps")]
    )
    assert {i.partition_key for i in infos} == set(days)
    # each result targets its partition's latest materialization: the check's partition view counts it
    assert all(i.is_current and i.latest_execution_status.value == "SUCCEEDED" for i in infos)
    rows = md_resource.runtime().repo.get_ledger("klines", "BTCUSDT", "1h", date(2024, 3, 1), date(2024, 3, 3))
    assert [r.check_status for r in rows] == ["passed"] * 3


def test_single_partition_metadata_and_higher_interval_agrees_with_1m(md_defs, dg_instance, md_resource, tmp_path):
    from marketdata_assets.defs import build_definitions
    from marketdata_assets.defs.config import CodeLocationConfig

    defs = build_definitions(CodeLocationConfig(symbols=("BTCUSDT",), intervals=("1m", "1h"),
                                                start_date=date(2024, 1, 1)), md_resource)
    pk = "2024-03-05|BTCUSDT"
    one_minute = _run(defs, dg_instance, md_resource, "1m", pk=pk)
    meta = one_minute.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert meta["dagster/row_count"].value == 1440
    assert meta["first_open_time"].value == datetime(2024, 3, 5, tzinfo=UTC).timestamp()
    assert meta["last_open_time"].value == datetime(2024, 3, 5, 23, 59, tzinfo=UTC).timestamp()
    assert "| open_time |" in meta["preview"].value and "2024-03-05 00:00:00" in meta["preview"].value
    assert meta["gap_bars"].value == {"fillable": 0, "exchange_gap": 0, "out_of_range": 0}

    hourly = _run(defs, dg_instance, md_resource, "1h", pk=pk)
    agrees = check_results(hourly, "agrees_with_1m")[("agrees_with_1m", pk)]
    assert agrees.passed and agrees.metadata["compared"].value == 24

    # a 1m bar that no longer matches its hour makes that day's check fail, naming the bar
    import sqlalchemy as sa

    from marketdata_assets.storage.tables import kline_data

    runtime = md_resource.runtime()
    with runtime.engine.begin() as conn:
        conn.execute(sa.update(kline_data).where(
            kline_data.c.symbol == "BTCUSDT", kline_data.c.interval == "1m",
            kline_data.c.open_time == datetime(2024, 3, 5, 10, 7, tzinfo=UTC),
        ).values(high="999999.99"))
    checked = run_checks(defs, dg_instance, md_resource, "1h", pk)
    agrees = check_results(checked, "agrees_with_1m")[("agrees_with_1m", pk)]
    assert not agrees.passed
    assert agrees.metadata["mismatched_bars"].value == ["2024-03-05 10:00:00+00:00"]


def test_out_of_range_days_of_a_delisted_symbol_are_not_gaps(md_resource, dg_instance):
    from marketdata_assets.defs import build_definitions
    from marketdata_assets.defs.config import CodeLocationConfig

    defs = build_definitions(CodeLocationConfig(symbols=("OLDUSDT",), intervals=("1h",),
                                                start_date=date(2024, 1, 1)), md_resource)
    dg_instance.add_dynamic_partitions("symbols", ["OLDUSDT"])
    # OLDUSDT is delisted at 2024-02-20 08:00 UTC in the simulator
    result = _run(defs, dg_instance, md_resource, "1h", start="2024-02-19|OLDUSDT", end="2024-02-21|OLDUSDT")
    assert result.success
    observed = _observations(dg_instance, "1h")
    assert observed["2024-02-19|OLDUSDT"]["dagster/row_count"].value == 24
    assert observed["2024-02-20|OLDUSDT"]["dagster/row_count"].value == 8
    assert observed["2024-02-20|OLDUSDT"]["gap_bars"].value["out_of_range"] == 16
    assert observed["2024-02-21|OLDUSDT"]["status"].value == "out_of_range"
    gaps = check_results(result, "gaps")
    assert all(e.passed for e in gaps.values()) and len(gaps) == 3


def test_unknown_symbol_fails_naming_the_partition(md_defs, dg_instance, md_resource):
    dg_instance.add_dynamic_partitions("symbols", ["NOPEUSDT"])
    result = _run(md_defs, dg_instance, md_resource, "1h", pk="2024-03-01|NOPEUSDT", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert "2024-03-01|NOPEUSDT" in message and "unknown symbol" in message
    assert md_resource.runtime().repo.get_ledger("klines", "NOPEUSDT") == []


def test_a_burst_of_5xx_is_retried_and_the_day_completes(md_defs, dg_instance, md_resource, sim):
    sim.set_faults(error_burst={"count": 3, "status": 503})
    result = _run(md_defs, dg_instance, md_resource, "1h", pk="2024-03-06|ETHUSDT")
    assert result.success
    row = md_resource.runtime().repo.get_ledger("klines", "ETHUSDT", "1h", date(2024, 3, 6), date(2024, 3, 6))[0]
    assert (row.status, row.actual_rows, row.check_status) == ("complete", 24, "passed")


@pytest.mark.parametrize("pk", ["2024-03-01|btcusdt", "yesterday|BTCUSDT"])
def test_malformed_partition_keys_are_rejected_naming_the_key(pk):
    from marketdata_assets.binance.intervals import InvalidInputError
    from marketdata_assets.defs.partitions import parse_partition_key

    with pytest.raises(InvalidInputError, match="partition"):
        parse_partition_key(pk)


def test_a_checks_run_without_partitions_checks_recent_days_and_logs_no_missing_outputs(
    md_defs, dg_instance, md_resource
):
    """What "Execute all" on the Checks tab launches: a checks-only run with no partition."""
    key = kline_asset_key("1h")
    checks = [c for c in md_defs.asset_checks if any(k.asset_key == key for k in c.check_keys)]
    result = dg.materialize([md_defs.get_assets_def(key), *checks], selection=dg.AssetSelection.checks_for_assets(key),
                            instance=dg_instance, resources={"marketdata": md_resource})
    assert result.success
    gaps = check_results(result, "gaps")
    today = datetime.now(UTC).date()
    expected = {f"{today - timedelta(days=i)}|{s}" for i in range(1, 8) for s in ("BTCUSDT", "ETHUSDT")}
    assert {p for _, p in gaps} == expected
    # nothing was loaded for those days here: each says so, attributed to its own partition
    assert all(not e.passed and "never loaded" in e.description for e in gaps.values())
    logs = [e.message for e in dg_instance.all_logs(result.run_id)]
    assert not [m for m in logs if "did not yield or return expected outputs" in m]
