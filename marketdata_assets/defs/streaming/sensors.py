"""Sensors over the sidecar's tables.

stream_monitor: reports a materialization of each stream table the sidecar wrote to since the last tick
(its freshness policy then reads real write times).
stream_gap_repair: an outage window whose kline holes REST could not fill inline becomes a run of the kline
partitions it touches (one run key per gap and partition, so each is requested once).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from marketdata_assets.binance.intervals import datetime_to_ms, day_of_ms, days_between
from marketdata_assets.defs.constants import TAG_REASON, kline_asset_key
from marketdata_assets.defs.klines.sensors import kline_run_request
from marketdata_assets.defs.partitions import partition_key
from marketdata_assets.defs.resources import MarketDataResource
from marketdata_assets.storage.stream_reads import last_writes, unfilled_stream_gaps

REASON_STREAM_GAP = "stream_gap"
LOOKBACK = timedelta(days=7)


def build_stream_monitor_sensor() -> dg.SensorDefinition:
    @dg.sensor(name="stream_monitor", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Reports the sidecar's writes as materializations of the stream assets.")
    def stream_monitor(context: dg.SensorEvaluationContext, marketdata: MarketDataResource):
        seen = json.loads(context.cursor) if context.cursor else {}
        events = []
        for name, written in last_writes(marketdata.runtime().engine).items():
            if written is None or seen.get(name) == written.isoformat():
                continue
            seen[name] = written.isoformat()
            events.append(dg.AssetMaterialization(name, metadata={"last_write": dg.MetadataValue.timestamp(written)}))
        if not events:
            return dg.SkipReason("the sidecar wrote nothing new")
        return dg.SensorResult(asset_events=events, cursor=json.dumps(seen, sort_keys=True))

    return stream_monitor


def build_stream_gap_repair_sensor(intervals: tuple[str, ...]) -> dg.SensorDefinition:
    @dg.sensor(name="stream_gap_repair", minimum_interval_seconds=120,
               target=dg.AssetSelection.assets(*[kline_asset_key(i) for i in intervals]),
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Stream outages whose kline holes REST could not fill inline -> kline partition runs.")
    def stream_gap_repair(context: dg.SensorEvaluationContext, marketdata: MarketDataResource):
        since = datetime.now(UTC) - LOOKBACK
        requests = []
        for gap in unfilled_stream_gaps(marketdata.runtime().engine, since, data_types=("kline",)):
            if gap.interval not in intervals:
                continue
            first = day_of_ms(datetime_to_ms(gap.start_time))
            last = day_of_ms(datetime_to_ms(gap.end_time))
            for day in days_between(first, last):
                pk = partition_key(day, gap.symbol)
                requests.append(kline_run_request(
                    gap.interval, pk, run_key=f"stream_gap:{gap.id}:{gap.interval}:{pk}",
                    tags={TAG_REASON: REASON_STREAM_GAP, "marketdata/stream_gap_id": str(gap.id)},
                ))
        if not requests:
            return dg.SkipReason("no stream gap waits for a repair")
        return requests

    return stream_gap_repair
