"""The funding_rates asset and its gaps check: real Dagster instance, real SQLite store, the simulator.

SOLUSDT's 8 h -> 4 h change passes per partition in a range run; a deleted event fails exactly its
partition's check and a re-run repairs it; an unknown symbol fails the run naming the partition.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from marketdata_assets.storage.tables_funding import funding_rates
from tests.support.datasets import run_dataset
from tests.support.defs import check_results, partition_metadata

FUNDING_KEY = dg.AssetKey("funding_rates")



def _run(defs, instance, resource, **options):
    return run_dataset(defs, instance, resource, FUNDING_KEY, **options)


@pytest.fixture
def instance(dg_instance):
    dg_instance.add_dynamic_partitions("symbols", ["SOLUSDT"])
    return dg_instance


def test_interval_change_passes_then_a_deleted_event_fails_and_is_repaired(md_defs, instance, md_resource):
    days = ["2023-09-30|SOLUSDT", "2023-10-01|SOLUSDT"]
    from marketdata_assets.defs import build_definitions
    from marketdata_assets.defs.config import CodeLocationConfig

    defs = build_definitions(CodeLocationConfig(symbols=("SOLUSDT",), intervals=("1h",),
                                                start_date=date(2023, 9, 1)), md_resource)
    result = _run(defs, instance, md_resource, start=days[0], end=days[1])
    assert result.success
    gaps = check_results(result, "gaps")
    assert {p for _, p in gaps} == set(days) and all(e.passed for e in gaps.values())
    assert gaps[("gaps", days[0])].metadata["intervals_h"].value == [8]
    assert gaps[("gaps", days[1])].metadata["intervals_h"].value == [4]
    observed = {p: m['dagster/row_count'].value for p, m in partition_metadata(instance, FUNDING_KEY).items()}
    assert observed == {days[0]: 3, days[1]: 6}

    engine = md_resource.runtime().engine
    with engine.begin() as conn:
        assert conn.execute(sa.delete(funding_rates).where(
            funding_rates.c.symbol == "SOLUSDT",
            funding_rates.c.funding_time == datetime(2023, 10, 1, 12, tzinfo=UTC))).rowcount == 1
    checked = check_results(_run(defs, instance, md_resource, start=days[1], end=days[1], checks_only=True))
    assert not checked[("gaps", days[1])].passed
    assert checked[("gaps", days[1])].metadata["missing_events"].value == ["2023-10-01T12:00:00+00:00"]
    ledger = md_resource.runtime().repo.get_ledger("funding_rates", "SOLUSDT", "", date(2023, 10, 1), date(2023, 10, 1))
    assert ledger[0].check_status == "failed"

    repaired = check_results(_run(defs, instance, md_resource, pk=days[1]))
    assert repaired[("gaps", days[1])].passed


def test_unknown_symbol_fails_naming_the_partition(md_defs, instance, md_resource):
    instance.add_dynamic_partitions("symbols", ["NOPEUSDT"])
    result = _run(md_defs, instance, md_resource, pk="2024-03-01|NOPEUSDT", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "2024-03-01|NOPEUSDT" in failure.event_specific_data.error.message
