"""The data_quality asset on a real Dagster instance and store (SQLite and PostgreSQL), against the simulator.

Loaded days score 1.0 per dataset with numeric metadata per dataset; a kline row removed from the table
lowers that dataset's completeness; a day loaded from REST only (today) is 100 % provisional; repair runs
recorded in the ledger are counted; datasets never loaded are listed and left out of the day's score.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pytest

from marketdata_assets.defs.constants import kline_asset_key
from marketdata_assets.defs.quality.assets import QUALITY_KEY
from tests.support.datasets import run_partition
from tests.support.defs import partition_metadata

PK = "2024-03-04|BTCUSDT"


@pytest.fixture
def defs(defs_config, store_resource):
    from marketdata_assets.defs import build_definitions

    return build_definitions(defs_config, store_resource)


def _quality(defs, instance, resource, pk: str) -> dict:
    result = dg.materialize([defs.get_assets_def(QUALITY_KEY)], partition_key=pk, instance=instance,
                            resources={"marketdata": resource})
    assert result.success
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_quality_per_dataset_completeness_gaps_repairs_and_provisional(defs, dg_instance, store_resource):
    for key in (kline_asset_key("1h"), dg.AssetKey("funding_rates"), dg.AssetKey("metrics")):
        assert run_partition(defs, dg_instance, store_resource, key, PK).success

    meta = _quality(defs, dg_instance, store_resource, PK)
    assert meta["klines_1h/completeness"] == 1.0 and meta["klines_1h/provisional_share"] == 0.0
    assert meta["funding_rates/completeness"] == 1.0 and meta["metrics/completeness"] == 1.0
    assert meta["klines_1h/fillable_gaps"] == 0 and meta["klines_1h/repairs"] == 0
    assert set(meta["not_loaded"]) >= {"klines_5m", "agg_trades", "book_depth", "mark_price_klines_1h"}
    assert meta["klines_5m/completeness"] == 0.0
    assert "| klines_1h | complete | passed | 24 / 24 | 100.00% |" in meta["quality"]
    assert meta["score"] == 1.0  # over the datasets loaded for the day: the ones never loaded are listed
    assert "not loaded: " in meta["quality"]

    repo = store_resource.runtime().repo
    five = datetime(2024, 3, 4, 5, tzinfo=UTC)
    assert repo.delete_klines("BTCUSDT", "1h", five, five.replace(hour=7)) == 2
    repo.record_repair_attempt("klines", "BTCUSDT", "1h", date(2024, 3, 4))
    meta = _quality(defs, dg_instance, store_resource, PK)
    assert meta["klines_1h/completeness"] == pytest.approx(22 / 24)
    assert meta["klines_1h/repairs"] == 1
    assert meta["score"] == pytest.approx((22 / 24 + 1 + 1) / 3)


def test_a_day_loaded_from_rest_only_is_provisional(defs, dg_instance, store_resource):
    today = "2024-04-02|BTCUSDT"  # the simulator's frozen day: no archive file yet
    assert run_partition(defs, dg_instance, store_resource, kline_asset_key("1h"), today).success
    meta = _quality(defs, dg_instance, store_resource, today)
    assert meta["klines_1h/provisional_share"] == 1.0


def test_range_run_reports_each_partition(defs, dg_instance, store_resource):
    keys = ["2024-03-04|BTCUSDT", "2024-03-05|BTCUSDT"]
    result = dg.materialize([defs.get_assets_def(QUALITY_KEY)], instance=dg_instance,
                            resources={"marketdata": store_resource},
                            tags={"dagster/asset_partition_range_start": keys[0],
                                  "dagster/asset_partition_range_end": keys[1]})
    assert result.success
    observed = set(partition_metadata(dg_instance, QUALITY_KEY))
    assert observed == set(keys)


def test_markdown_cells_escape_the_partition_key_separator():
    from marketdata_assets.defs.quality.assets import md_cell

    row = f"| {md_cell('2024-03-04|BTCUSDT')} | 100.00% |"
    # a markdown renderer splits cells on unescaped pipes only: two cells, the key whole
    cells = [c.strip() for c in row.replace("\\|", "\0").strip("|").split("|")]
    assert cells == ["2024-03-04\0BTCUSDT", "100.00%"]
