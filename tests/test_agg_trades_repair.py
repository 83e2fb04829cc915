"""agg_trades gap repair: a removed id range fails its partition's id-continuity check, `gap_repair_agg_trades`
requests exactly that partition, and after the run the check passes (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import dagster as dg

from tests.support.datasets import repair_flow

AGG_TRADES_KEY = dg.AssetKey("agg_trades")

PK = "2024-03-04|NEWUSDT"  # a small symbol: a few thousand trades a day


def test_removed_id_range_is_found_and_repaired_by_the_sensor(defs_config, dg_instance, store_resource):
    from marketdata_assets.defs import build_definitions
    from marketdata_assets.storage.agg_trades_store import AggTradeStore

    dg_instance.add_dynamic_partitions("symbols", ["NEWUSDT"])
    defs = build_definitions(defs_config, store_resource)
    removed: list[int] = []

    def remove():
        store = AggTradeStore(store_resource.runtime().engine)
        _rows, first, _last = store.day_stats("NEWUSDT", date(2024, 3, 4))
        removed.extend(range(first + 10, first + 20))
        assert store.delete("NEWUSDT", removed) == 10

    failed = repair_flow(defs, dg_instance, store_resource, AGG_TRADES_KEY, PK, "gap_repair_agg_trades", remove,
                         ("agg_trades", ""))
    assert failed["missing_inside"] == 10
    store = AggTradeStore(store_resource.runtime().engine)
    assert store.ids("NEWUSDT", removed[0], removed[-1]) == removed
