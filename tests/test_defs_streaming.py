"""The sidecar in Dagster: its tables as external assets with freshness policies, the monitor that reports
its writes, and the sensor that turns stream gaps REST could not fill into kline repair runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from marketdata_assets.binance.klines import raw_klines_from_stream
from marketdata_assets.storage.tables_stream import stream_gaps
from tests.support.defs import tick


def add_gap(engine, state: str, start: datetime, end: datetime, data_type: str = "kline", interval: str = "1h"):
    now = datetime.now(UTC)
    with engine.begin() as conn:
        return conn.execute(
            sa.insert(stream_gaps).values(
                symbol="BTCUSDT", stream=f"btcusdt@kline_{interval}", data_type=data_type, interval=interval,
                start_time=start, end_time=end, reason="closed", state=state, detected_at=now, updated_at=now,
            ).returning(stream_gaps.c.id)
        ).scalar_one()


def test_stream_tables_are_external_assets_with_freshness_policies(md_defs):
    specs = {spec.key.to_user_string(): spec for spec in md_defs.resolve_all_asset_specs()}
    for name in ("stream_klines", "stream_agg_trades", "stream_mark_price", "stream_ticker_24h", "stream_order_books"):
        assert specs[name].freshness_policy is not None
        assert specs[name].group_name == "streaming"
    assert {dep.asset_key.to_user_string() for dep in specs["stream_gaps"].deps} >= {"stream_klines"}


def test_unfilled_stream_gap_becomes_runs_of_the_partitions_it_touches(md_defs, md_resource, dg_instance):
    engine = md_resource.runtime().engine
    recent = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    gap_id = add_gap(engine, "failed", recent - timedelta(minutes=20), recent + timedelta(minutes=5))
    add_gap(engine, "filled", recent - timedelta(days=1), recent - timedelta(days=1) + timedelta(minutes=3))
    add_gap(engine, "failed", recent, recent + timedelta(minutes=3), interval="3m")  # no klines_3m asset here
    result = tick(md_defs, "stream_gap_repair", dg_instance, md_resource)
    requests = result.run_requests
    days = [(recent - timedelta(days=1)).date(), recent.date()]
    assert sorted(r.partition_key for r in requests) == [f"{d.isoformat()}|BTCUSDT" for d in days]
    assert all(r.asset_selection == [dg.AssetKey("klines_1h")] for r in requests)
    assert {r.tags["marketdata/reason"] for r in requests} == {"stream_gap"}
    assert {r.tags["marketdata/stream_gap_id"] for r in requests} == {str(gap_id)}
    again = tick(md_defs, "stream_gap_repair", dg_instance, md_resource)
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in requests}  # idempotent by run key


def test_monitor_reports_new_sidecar_writes_once(md_defs, md_resource, dg_instance):
    first = tick(md_defs, "stream_monitor", dg_instance, md_resource)
    assert first.skip_message
    bar = {"t": 1709251200000, "o": "1.0", "h": "1.0", "l": "1.0", "c": "1.0", "v": "0", "T": 1709251259999,
           "q": "0", "n": 0, "V": "0", "Q": "0", "B": "0"}
    md_resource.runtime().repo.upsert_klines(raw_klines_from_stream([bar], "BTCUSDT", "1m"))
    second = tick(md_defs, "stream_monitor", dg_instance, md_resource, cursor=first.cursor)
    assert [e.asset_key.to_user_string() for e in second.asset_events] == ["stream_klines"]
    third = tick(md_defs, "stream_monitor", dg_instance, md_resource, cursor=second.cursor)
    assert third.skip_message
