"""funding_rates gap repair: a removed funding event fails its partition's check, `gap_repair_funding_rates`
requests exactly that partition, and after the run the check passes (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from marketdata_assets.storage.tables_funding import funding_rates
from tests.support.datasets import repair_flow

FUNDING_KEY = dg.AssetKey("funding_rates")

PK = "2024-03-04|BTCUSDT"


def test_removed_funding_event_is_found_and_repaired_by_the_sensor(defs_config, dg_instance, store_resource):
    from marketdata_assets.defs import build_definitions

    def remove():
        with store_resource.runtime().engine.begin() as conn:
            deleted = conn.execute(sa.delete(funding_rates).where(
                funding_rates.c.symbol == "BTCUSDT",
                funding_rates.c.funding_time == datetime(2024, 3, 4, 8, tzinfo=UTC))).rowcount
        assert deleted == 1

    defs = build_definitions(defs_config, store_resource)
    failed = repair_flow(defs, dg_instance, store_resource, FUNDING_KEY, PK, "gap_repair_funding_rates", remove,
                         ("funding_rates", ""))
    assert failed["missing_events"] == ["2024-03-04T08:00:00+00:00"]
