"""Gap checks and the repair sensor against the simulator, on a real Dagster instance and SQLite store.

The issue's acceptance path: a deleted row makes that partition's gap check fail; the repair sensor's next
tick requests exactly that partition (run key, tags); after the run the check passes. An outage window of
the simulator is an exchange gap: the check passes with a warning and the sensor requests nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg

from marketdata_assets.defs.constants import (
    REASON_REPAIR,
    TAG_REASON,
    TAG_REPAIR_ATTEMPT,
    kline_asset_key,
)
from tests.support.defs import check_results, execute_request, run_checks, tick

PK = "2024-03-04|BTCUSDT"


def _materialize(defs, instance, resource, interval: str, pk: str):
    request = dg.RunRequest(
        asset_selection=[kline_asset_key(interval)],
        asset_check_keys=[
            k for c in defs.asset_checks for k in c.check_keys if k.asset_key == kline_asset_key(interval)
        ],
        partition_key=pk,
    )
    return execute_request(defs, instance, resource, request)


def _tick(defs, instance, resource, cursor=None):
    return tick(defs, "gap_repair", instance, resource, cursor)


def _ledger(resource, interval: str, day: date):
    rows = resource.runtime().repo.get_ledger("klines", "BTCUSDT", interval, day, day)
    assert len(rows) == 1
    return rows[0]


def test_deleted_row_fails_gap_check_and_repair_sensor_fixes_exactly_that_partition(
    md_defs, dg_instance, md_resource
):
    result = _materialize(md_defs, dg_instance, md_resource, "1h", PK)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert _tick(md_defs, dg_instance, md_resource).run_requests == []

    repo = md_resource.runtime().repo
    five, six = datetime(2024, 3, 4, 5, tzinfo=UTC), datetime(2024, 3, 4, 6, tzinfo=UTC)
    deleted = repo.delete_klines("BTCUSDT", "1h", five, six)
    assert deleted == 1
    checked = run_checks(md_defs, dg_instance, md_resource, "1h", PK)
    gaps = check_results(checked, "gaps")[("gaps", PK)]
    assert not gaps.passed
    assert gaps.metadata["fillable_bars"].value == 1
    assert check_results(checked, "rows")[("rows", PK)].passed
    assert _ledger(md_resource, "1h", date(2024, 3, 4)).check_status == "failed"

    tick = _tick(md_defs, dg_instance, md_resource)
    assert len(tick.run_requests) == 1
    request = tick.run_requests[0]
    assert request.partition_key == PK
    assert list(request.asset_selection) == [kline_asset_key("1h")]
    assert request.tags[TAG_REASON] == REASON_REPAIR and request.tags[TAG_REPAIR_ATTEMPT] == "1"
    assert request.run_key == f"{REASON_REPAIR}:klines_1h:{PK}:1"
    assert _ledger(md_resource, "1h", date(2024, 3, 4)).repair_attempts == 1

    repaired = execute_request(md_defs, dg_instance, md_resource, request)
    assert repaired.success
    assert check_results(repaired, "gaps")[("gaps", PK)].passed
    assert repo.count_klines("BTCUSDT", "1h", datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC)) == 24
    row = _ledger(md_resource, "1h", date(2024, 3, 4))
    assert (row.check_status, row.repair_attempts) == ("passed", 0)

    after = _tick(md_defs, dg_instance, md_resource, cursor=tick.cursor)
    assert after.run_requests == []


def test_outage_is_an_exchange_gap_a_warning_and_nothing_is_requested(md_defs, dg_instance, md_resource):
    import dagster as dg

    pk = "2024-02-10|BTCUSDT"  # the simulator's default outage: 06:35-07:00 UTC, all symbols
    result = _materialize(md_defs, dg_instance, md_resource, "5m", pk)
    assert result.success
    gaps = check_results(result, "gaps")[("gaps", pk)]
    # a warning, not green: what the UI shows for a failed evaluation of WARN severity
    assert not gaps.passed and gaps.severity == dg.AssetCheckSeverity.WARN
    assert gaps.metadata["status"].value == "warning"
    assert gaps.metadata["exchange_gap_bars"].value == 5
    assert gaps.metadata["fillable_bars"].value == 0
    assert _ledger(md_resource, "5m", date(2024, 2, 10)).check_status == "warning"
    assert _tick(md_defs, dg_instance, md_resource).run_requests == []


def test_repairs_are_bounded_by_backoff_and_attempts(md_defs, dg_instance, md_resource):
    assert _materialize(md_defs, dg_instance, md_resource, "1h", PK).success
    repo = md_resource.runtime().repo
    repo.delete_klines("BTCUSDT", "1h", datetime(2024, 3, 4, 5, tzinfo=UTC), datetime(2024, 3, 4, 7, tzinfo=UTC))
    run_checks(md_defs, dg_instance, md_resource, "1h", PK)
    first = _tick(md_defs, dg_instance, md_resource)
    assert [r.partition_key for r in first.run_requests] == [PK]

    # the repair did not happen (say the run failed): the check fails again, but the backoff holds
    run_checks(md_defs, dg_instance, md_resource, "1h", PK)
    assert _tick(md_defs, dg_instance, md_resource, cursor=first.cursor).run_requests == []

    # with the attempts used up, the sensor gives up on the partition
    repo.record_repair_attempt("klines", "BTCUSDT", "1h", date(2024, 3, 4))
    repo.record_repair_attempt("klines", "BTCUSDT", "1h", date(2024, 3, 4))
    assert _tick(md_defs, dg_instance, md_resource).run_requests == []


def test_a_broken_bar_fails_the_row_check_of_its_own_day_naming_the_ohlc_part(md_defs, dg_instance, md_resource):
    import sqlalchemy as sa

    from marketdata_assets.storage.tables import kline_data

    days = ["2024-03-04|BTCUSDT", "2024-03-05|BTCUSDT"]
    for pk in days:
        assert _materialize(md_defs, dg_instance, md_resource, "1h", pk).success
    engine = md_resource.runtime().engine
    with engine.begin() as conn:  # high below the open: an exchange never sends that
        conn.execute(sa.update(kline_data).where(
            kline_data.c.symbol == "BTCUSDT", kline_data.c.interval == "1h",
            kline_data.c.open_time == datetime(2024, 3, 5, 7, tzinfo=UTC)).values(high=1))
    checked = dg.materialize(
        [md_defs.get_assets_def(kline_asset_key("1h")), *md_defs.asset_checks],
        selection=dg.AssetSelection.checks_for_assets(kline_asset_key("1h")),
        tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[1]},
        instance=dg_instance, resources={"marketdata": md_resource}, raise_on_error=False,
    )
    rows = check_results(checked, "rows")
    assert rows[("rows", days[0])].passed
    broken = rows[("rows", days[1])]
    assert not broken.passed
    assert "ohlc failed: 1 bar(s) break OHLC invariants" in broken.description
    assert broken.metadata["ohlc_status"].value == "failed"
    assert broken.metadata["duplicates_status"].value == "passed"
    assert "high < open/close" in broken.metadata["ohlc_violations"].value[0]
    assert _ledger(md_resource, "1h", date(2024, 3, 5)).check_status == "failed"
    assert _ledger(md_resource, "1h", date(2024, 3, 4)).check_status == "passed"
