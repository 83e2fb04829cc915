"""Dagster code-location fixtures (owner: defs). Registered from conftest.py via `pytest_plugins`.

- `md_resource`: a MarketDataResource on a SQLite file under tmp_path, pointed at the `sim` fixture.
- `defs_config`: BTCUSDT + ETHUSDT, 1h and 5m (small and quick), partitions from 2024-01-01.
- `md_defs`: the Definitions built from both; `dg_instance`: an ephemeral Dagster instance with the two
  symbols in the dynamic `symbols` partitions.
- `execute_request(defs, instance, resource, run_request)`: run a sensor's or schedule's RunRequest in
  process, exactly as it selects (assets, checks, partition, tags).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest


@pytest.fixture
def md_resource(sim, tmp_path):
    from marketdata_assets.defs.resources import MarketDataResource

    resource = MarketDataResource(
        database_url=f"sqlite:///{tmp_path / 'md' / 'marketdata.db'}",
        fapi_url=sim.url,
        archive_url=sim.url,
        archive_listing_url=sim.url + "/data.binance.vision",
    )
    yield resource
    resource.close()


@pytest.fixture
def defs_config():
    from marketdata_assets.defs.config import CodeLocationConfig

    return CodeLocationConfig(symbols=("BTCUSDT", "ETHUSDT"), intervals=("1h", "5m"), start_date=date(2024, 1, 1))


@pytest.fixture
def md_defs(defs_config, md_resource):
    from marketdata_assets.defs import build_definitions

    return build_definitions(defs_config, md_resource)


@pytest.fixture
def dg_instance() -> Iterator:
    import dagster as dg

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["BTCUSDT", "ETHUSDT"])
        yield instance


def execute_request(defs, instance, resource, request, raise_on_error: bool = True):
    """Run what a RunRequest selects, in process, on `instance`."""
    import dagster as dg

    keys = list(request.asset_selection or [])
    check_keys = list(request.asset_check_keys or [])
    # the checked assets are part of the job even when only their checks are selected
    assets = [defs.get_assets_def(key) for key in dict.fromkeys([*keys, *(k.asset_key for k in check_keys)])]
    checks = [c for c in defs.asset_checks if set(c.check_keys) & set(check_keys)]
    selection = dg.AssetSelection.assets(*keys).without_checks() | dg.AssetSelection.checks(*check_keys)
    return dg.materialize(
        [*assets, *checks], selection=selection, partition_key=request.partition_key, tags=request.tags,
        instance=instance, resources={"marketdata": resource}, raise_on_error=raise_on_error,
    )


def run_checks(defs, instance, resource, interval: str, partition_key: str, raise_on_error: bool = True):
    """Run every check of `klines_<interval>` on one partition, without materializing it.

    A range of one partition: `materialize(partition_key=...)` insists on a selected asset.
    """
    import dagster as dg

    from marketdata_assets.defs.constants import kline_asset_key

    key = kline_asset_key(interval)
    checks = [c for c in defs.asset_checks if any(k.asset_key == key for k in c.check_keys)]
    return dg.materialize(
        [defs.get_assets_def(key), *checks], selection=dg.AssetSelection.checks_for_assets(key),
        tags={"dagster/asset_partition_range_start": partition_key,
              "dagster/asset_partition_range_end": partition_key},
        instance=instance, resources={"marketdata": resource}, raise_on_error=raise_on_error,
    )


def check_results(result, check_name: str | None = None) -> dict:
    """{(check_name, partition): AssetCheckEvaluation} of an execution result."""
    return {
        (e.check_name, e.partition): e
        for e in result.get_asset_check_evaluations()
        if check_name is None or e.check_name == check_name
    }


def tick(defs, name: str, instance, resource, cursor: str | None = None):
    """One evaluation of sensor `name` as the daemon would run it (SensorExecutionData)."""
    import dagster as dg
    from dagster._core.definitions.partitions.context import partition_loading_context

    sensor = defs.resolve_sensor_def(name)
    with (
        partition_loading_context(dynamic_partitions_store=instance),
        dg.build_sensor_context(
            instance=instance, resources={"marketdata": resource}, cursor=cursor, definitions=defs
        ) as context,
    ):
        return sensor.evaluate_tick(context)


def partition_metadata(instance, key, limit: int = 1000) -> dict:
    """{partition: metadata} of each partition's LATEST materialization: what the UI's partition view shows."""
    out: dict = {}
    for record in instance.fetch_materializations(key, limit=limit).records:  # newest first
        materialization = record.asset_materialization
        out.setdefault(materialization.partition, materialization.metadata)
    return out
