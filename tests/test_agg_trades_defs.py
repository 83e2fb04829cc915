"""The agg_trades asset and its id-continuity check: real Dagster instance, real SQLite store, the simulator.

A range run reports each day on its own partition; a deleted trade fails exactly its partition's check
and a re-run of that partition repairs it.
"""

from __future__ import annotations

import dagster as dg
import pytest

from tests.support.datasets import run_dataset
from tests.support.defs import check_results, partition_metadata

AGG_TRADES_KEY = dg.AssetKey("agg_trades")



def _run(defs, instance, resource, **options):
    return run_dataset(defs, instance, resource, AGG_TRADES_KEY, **options)


@pytest.fixture
def instance(dg_instance):
    dg_instance.add_dynamic_partitions("symbols", ["NEWUSDT"])
    return dg_instance


def test_range_run_then_a_deleted_trade_fails_and_a_rerun_repairs(md_defs, instance, md_resource):
    days = ["2024-03-04|NEWUSDT", "2024-03-05|NEWUSDT"]
    result = _run(md_defs, instance, md_resource, start=days[0], end=days[1])
    assert result.success
    gaps = check_results(result, "gaps")
    assert {p for _, p in gaps} == set(days) and all(e.passed for e in gaps.values())
    observed = partition_metadata(instance, AGG_TRADES_KEY)
    assert set(observed) == set(days)
    meta = observed[days[1]]
    assert meta["dagster/row_count"].value == meta["expected_rows"].value > 0
    assert meta["corrections"].value == []

    from marketdata_assets.storage.agg_trades_store import AggTradeStore

    store = AggTradeStore(md_resource.runtime().engine)
    first = meta["first_id"].value
    assert store.delete("NEWUSDT", [first + 5]) == 1
    checked = check_results(_run(md_defs, instance, md_resource, start=days[1], end=days[1], checks_only=True))
    assert not checked[("gaps", days[1])].passed
    assert checked[("gaps", days[1])].metadata["missing_inside"].value == 1

    again = check_results(_run(md_defs, instance, md_resource, pk=days[1]))
    assert again[("gaps", days[1])].passed
    assert store.ids("NEWUSDT", first + 5, first + 5) == [first + 5]


def test_an_unsorted_archive_file_is_corrected_and_the_correction_reported(md_defs, instance, md_resource, sim):
    # SPEC D.1: real aggTrades files with rows out of order and repeated; the .CHECKSUM still matches
    day = "2024-03-06"
    sim.set_faults(shuffled=[f"/data/futures/um/daily/aggTrades/NEWUSDT/NEWUSDT-aggTrades-{day}.zip"])
    result = _run(md_defs, instance, md_resource, pk=f"{day}|NEWUSDT")
    assert result.success
    [materialization] = result.asset_materializations_for_node("agg_trades")
    corrections = materialization.metadata["corrections"].value
    assert any("sorted" in c for c in corrections) and any("duplicate" in c for c in corrections), corrections
    assert all(e.passed for e in check_results(result).values())


def test_a_changed_column_layout_fails_the_run_naming_the_file(md_defs, instance, md_resource, sim):
    day = "2024-03-07"
    path = f"/data/futures/um/daily/aggTrades/NEWUSDT/NEWUSDT-aggTrades-{day}.zip"
    sim.set_faults(relayout=[path])
    result = dg.materialize(
        [md_defs.get_assets_def(AGG_TRADES_KEY)], partition_key=f"{day}|NEWUSDT", instance=instance,
        resources={"marketdata": md_resource}, raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.to_string()
    assert f"NEWUSDT-aggTrades-{day}" in message
