"""A dataset added as one spec plus its loader gets its asset, checks, repair sensor and quality input.

The toy dataset lives in this test only: hourly "ticks" in a table of its own, its rows and its ledger row
written in one transaction, a `gaps` check counting the stored rows. Nothing else in the product changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg
import sqlalchemy as sa

from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.defs import build_definitions
from marketdata_assets.defs.constants import GAP_CHECK
from marketdata_assets.defs.datasets.spec import CheckFamily, DailyDatasetSpec
from marketdata_assets.storage.ledger import DayStatus, LedgerRow, upsert_ledger
from marketdata_assets.validation import kline_checks as kc
from tests.support.datasets import repair_flow, run_partition

TOY = "toy_ticks"
HOUR_MS = 3_600_000
toy_metadata = sa.MetaData()
toy_ticks = sa.Table(TOY, toy_metadata, sa.Column("symbol", sa.String(32), primary_key=True),
                     sa.Column("at_ms", sa.BigInteger(), primary_key=True))


@dataclass
class ToyDay:
    symbol: str
    day: date
    status: str
    stored_rows: int
    error: str | None = None


class ToyLoader:
    """24 ticks a day; rows and the day's ledger row in one transaction."""

    def __init__(self, engine) -> None:
        self.engine = engine
        toy_metadata.create_all(engine)

    def load(self, symbol: str, days) -> list[ToyDay]:
        out = []
        for day in days:
            start = day_start_ms(day)
            with self.engine.begin() as conn:
                conn.execute(sa.delete(toy_ticks).where(toy_ticks.c.symbol == symbol, toy_ticks.c.at_ms >= start,
                                                        toy_ticks.c.at_ms < start + DAY_MS))
                conn.execute(sa.insert(toy_ticks), [{"symbol": symbol, "at_ms": start + h * HOUR_MS}
                                                    for h in range(24)])
                upsert_ledger(conn, [LedgerRow(TOY, symbol, "", day, 24, 24, DayStatus.COMPLETE)])
            out.append(ToyDay(symbol, day, DayStatus.COMPLETE, 24))
        return out


def toy_gaps(runtime, symbol: str, days: list[date], selected: set[str]) -> dict:
    verdicts = {}
    with runtime.engine.connect() as conn:
        for day in days:
            start = day_start_ms(day)
            stored = conn.execute(sa.select(sa.func.count()).select_from(toy_ticks).where(
                toy_ticks.c.symbol == symbol, toy_ticks.c.at_ms >= start, toy_ticks.c.at_ms < start + DAY_MS)).scalar()
            missing = 24 - int(stored)
            verdicts[day] = (kc.DayCheck(day, kc.FAILED, f"{missing} tick(s) missing", {"missing": missing})
                             if missing else kc.DayCheck(day, kc.PASSED, "no gaps", {"missing": 0}))
    return {GAP_CHECK: verdicts}


TOY_SPEC = DailyDatasetSpec(
    name=TOY, ledger_dataset=TOY, table=TOY, group="toys", description="Hourly toy ticks (a test's dataset).",
    loader=lambda runtime: ToyLoader(runtime.engine),
    checks=CheckFamily({GAP_CHECK: "24 ticks a day."}, toy_gaps),
    day_metadata=lambda r: {"dagster/row_count": r.stored_rows},
    summary=lambda results, _loader: {"dagster/row_count": sum(r.stored_rows for r in results)},
    days_per_run=31, pool=None, deps=(), repair_sensor="gap_repair_toys",
)
KEY = dg.AssetKey(TOY)
PK = "2024-03-01|BTCUSDT"


def test_a_toy_spec_gets_its_asset_checks_repair_sensor_and_quality_input(defs_config, store_resource):
    defs = build_definitions(defs_config, store_resource, extra_datasets=[TOY_SPEC])
    graph = defs.resolve_asset_graph()
    node = graph.get(KEY)
    assert node.group_name == "toys"
    assert {k.name for k in node.check_keys} == {GAP_CHECK}
    assert KEY in graph.get(dg.AssetKey("data_quality")).parent_keys
    assert "gap_repair_toys" in {s.name for s in defs.sensors}
    assert isinstance(defs.get_assets_def(KEY).partitions_def, dg.MultiPartitionsDefinition)


def test_a_toy_gap_is_found_by_its_check_and_repaired_by_its_sensor(defs_config, dg_instance, store_resource):
    defs = build_definitions(defs_config, store_resource, extra_datasets=[TOY_SPEC])

    def remove():
        with store_resource.runtime().engine.begin() as conn:
            deleted = conn.execute(sa.delete(toy_ticks).where(
                toy_ticks.c.symbol == "BTCUSDT", toy_ticks.c.at_ms == day_start_ms(date(2024, 3, 1)) + 5 * HOUR_MS))
            assert deleted.rowcount == 1

    failed = repair_flow(defs, dg_instance, store_resource, KEY, PK, "gap_repair_toys", remove, (TOY, ""))
    assert failed["missing"] == 1
    quality = run_partition(defs, dg_instance, store_resource, dg.AssetKey("data_quality"), PK)
    meta = quality.asset_materializations_for_node("data_quality")[0].metadata
    assert meta[f"{TOY}/completeness"].value == 1.0
