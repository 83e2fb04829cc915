"""A snapshot of the code location's graph, so that every change to it is deliberate.

Asset keys, groups, kinds, partitions, deps, backfill policy, pool and checks of every asset; sensors and
schedules with what they target. A change fails this test with a diff; when the change is intended,
regenerate with `MARKETDATA_UPDATE_SNAPSHOTS=1 pytest tests/test_defs_snapshot.py` and commit the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from marketdata_assets.defs import build_definitions
from marketdata_assets.defs.config import CodeLocationConfig
from marketdata_assets.defs.resources import MarketDataResource

SNAPSHOT = Path(__file__).parent / "snapshots" / "code_location.json"


def _partitions(pdef) -> object:
    if pdef is None:
        return None
    if isinstance(pdef, dg.MultiPartitionsDefinition):
        return {d.name: _partitions(d.partitions_def) for d in pdef.partitions_defs}
    if isinstance(pdef, dg.DynamicPartitionsDefinition):
        return f"dynamic:{pdef.name}"
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        return f"time:{pdef.cron_schedule}:{pdef.start.date().isoformat()}:{pdef.timezone}"
    return type(pdef).__name__


def code_location_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        entry: dict = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(k.name for k in node.check_keys),
            "partitions": _partitions(node.partitions_def),
            "external": not node.is_materializable,
        }
        if node.is_materializable:
            assets_def = defs.get_assets_def(key)
            policy = assets_def.backfill_policy
            entry["backfill"] = None if policy is None else (
                f"{policy.policy_type.value}:{policy.max_partitions_per_run}")
            entry["pool"] = assets_def.op.pool
        assets[key.to_user_string()] = entry
    sensors = {s.name: {"targets": sorted(k.to_user_string() for k in (
        s.asset_selection.resolve(graph) if s.asset_selection is not None else ()))} for s in defs.sensors}
    schedules = {s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone} for s in defs.schedules}
    return {"assets": assets, "sensors": dict(sorted(sensors.items())), "schedules": dict(sorted(schedules.items()))}


def test_code_location_matches_its_snapshot():
    # the store's kind is part of the graph: pin it (DATABASE_URL may say otherwise where the test runs)
    resource = MarketDataResource(database_url="sqlite:///data/marketdata.db")
    current = code_location_snapshot(build_definitions(CodeLocationConfig(), resource))
    text = json.dumps(current, indent=1, sort_keys=True) + "\n"
    if os.environ.get("MARKETDATA_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), f"no snapshot yet: run with MARKETDATA_UPDATE_SNAPSHOTS=1 to write {SNAPSHOT}"
    recorded = json.loads(SNAPSHOT.read_text())
    assert current == recorded, ("the code location changed: if intended, regenerate the snapshot "
                                 "(MARKETDATA_UPDATE_SNAPSHOTS=1) and commit it")
