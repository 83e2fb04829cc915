"""Helpers for the dataset tests (funding, agg trades, price klines, metrics, book depth, quality).

- `store_resource`: a MarketDataResource against the `sim` fixture, once on a SQLite file and once on a
  fresh PostgreSQL schema (dropped afterwards). Import it into a test module to use it.
- `run_dataset`: one partition or a range of one asset with its checks (or the checks only), in process;
  `run_partition` / `run_checks_only`: its two common cases.
- `repair_flow`: the acceptance path of a repair: remove or alter data, the check fails, the sensor requests
  exactly that partition (run key, tags), the run repairs it, the check passes, the next tick is empty.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import dagster as dg
import pytest
import sqlalchemy as sa

from tests.support.db import PG_URL
from tests.support.defs import check_results, execute_request, tick

RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_resource(request, sim, tmp_path) -> Iterator:
    from marketdata_assets.defs.resources import MarketDataResource
    from marketdata_assets.storage.engine import make_engine

    urls = {"fapi_url": sim.url, "archive_url": sim.url, "archive_listing_url": sim.url + "/data.binance.vision"}
    if request.param == "sqlite":
        resource = MarketDataResource(database_url=f"sqlite:///{tmp_path / 'md' / 'marketdata.db'}", **urls)
        yield resource
        resource.close()
        return
    admin = make_engine(PG_URL)
    schema = f"t_{secrets.token_hex(6)}"
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    resource = MarketDataResource(database_url=f"{PG_URL}?options=-csearch_path%3D{schema}", **urls)
    try:
        yield resource
    finally:
        resource.close()
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()


def _checks_of(defs, key: dg.AssetKey) -> list:
    return [c for c in defs.asset_checks if any(k.asset_key == key for k in c.check_keys)]


def run_dataset(defs, instance, resource, key: dg.AssetKey, *, pk: str | None = None, start: str | None = None,
                end: str | None = None, checks_only: bool = False, raise_on_error: bool = True):
    """One partition (`pk`) or a range (`start`..`end`) of `key` with every check of the asset, in process;
    `checks_only` runs the checks without materializing."""
    tags = dict(zip(RANGE, (start, end), strict=True)) if start else None
    selection = dg.AssetSelection.checks_for_assets(key) if checks_only else None
    return dg.materialize([defs.get_assets_def(key), *_checks_of(defs, key)], partition_key=pk, tags=tags,
                          selection=selection, instance=instance, resources={"marketdata": resource},
                          raise_on_error=raise_on_error)


def run_partition(defs, instance, resource, key: dg.AssetKey, pk: str, raise_on_error: bool = True):
    """Materialize one partition of `key` with every check of the asset."""
    return dg.materialize([defs.get_assets_def(key), *_checks_of(defs, key)], partition_key=pk, instance=instance,
                          resources={"marketdata": resource}, raise_on_error=raise_on_error)


def run_checks_only(defs, instance, resource, key: dg.AssetKey, pk: str):
    """Every check of `key` on one partition without materializing it (a one-partition range)."""
    return dg.materialize([defs.get_assets_def(key), *_checks_of(defs, key)],
                          selection=dg.AssetSelection.checks_for_assets(key), tags=dict.fromkeys(RANGE, pk),
                          instance=instance, resources={"marketdata": resource})


def repair_sensor_names(defs) -> list[str]:
    return sorted(s.name for s in defs.sensors if s.name.startswith("gap_repair"))


def repair_flow(defs, instance, resource, key: dg.AssetKey, pk: str, sensor: str,
                remove: Callable[[], None], ledger: tuple[str, str], check: str = "gaps") -> dict:
    """Run the whole repair path for one partition: `remove` breaks it, `check` (gaps, or audit for
    altered rows) fails, the sensor repairs; returns the failed evaluation's metadata."""
    from marketdata_assets.binance.intervals import parse_day
    from marketdata_assets.defs.constants import REASON_REPAIR, TAG_REASON, TAG_REPAIR_ATTEMPT

    dataset, interval = ledger
    symbol, day = pk.split("|")[1], parse_day(pk.split("|")[0])

    def ledger_row():
        rows = resource.runtime().repo.get_ledger(dataset, symbol, interval, day, day)
        assert len(rows) == 1
        return rows[0]

    loaded = run_partition(defs, instance, resource, key, pk)
    assert loaded.success
    assert check_results(loaded, check)[(check, pk)].passed
    assert tick(defs, sensor, instance, resource).run_requests == []

    remove()
    failed = check_results(run_checks_only(defs, instance, resource, key, pk), check)[(check, pk)]
    assert not failed.passed
    assert ledger_row().check_status == "failed"
    for other in repair_sensor_names(defs):  # no other repair sensor reacts to this dataset's failure
        if other != sensor:
            assert tick(defs, other, instance, resource).run_requests == [], other

    first = tick(defs, sensor, instance, resource)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.partition_key == pk
    assert list(request.asset_selection) == [key]
    assert {k.asset_key for k in request.asset_check_keys} == {key}
    assert request.tags[TAG_REASON] == REASON_REPAIR and request.tags[TAG_REPAIR_ATTEMPT] == "1"
    assert request.run_key == f"{REASON_REPAIR}:{key.path[-1]}:{pk}:1"
    assert ledger_row().repair_attempts == 1

    repaired = execute_request(defs, instance, resource, request)
    assert repaired.success
    assert all(e.passed for e in check_results(repaired, check).values())
    row = ledger_row()
    assert (row.check_status, row.repair_attempts) in {("passed", 0), ("warning", 0)}
    assert tick(defs, sensor, instance, resource, cursor=first.cursor).run_requests == []
    return {k: v.value for k, v in failed.metadata.items()}
