"""The daily schedule, symbol discovery and archive settlement, evaluated as the daemon evaluates them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg

from marketdata_assets.defs import build_definitions
from marketdata_assets.defs.config import CodeLocationConfig
from marketdata_assets.defs.constants import (
    EXCHANGE_INFO_KEY,
    REASON_DAILY,
    REASON_SETTLEMENT,
    TAG_REASON,
    kline_asset_key,
)
from tests.support.defs import execute_request, tick


def _schedule_tick(defs, instance, when: datetime):
    from dagster._core.definitions.partitions.context import partition_loading_context

    schedule = defs.resolve_schedule_def("daily_refresh")
    with (
        partition_loading_context(dynamic_partitions_store=instance),
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                  repository_def=defs.get_repository_def()) as context,
    ):
        return schedule.evaluate_tick(context)


def test_daily_schedule_at_0015_utc_requests_yesterday_for_every_symbol_and_interval(md_defs, dg_instance):
    schedule = md_defs.resolve_schedule_def("daily_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 0 * * *", "UTC")

    data = _schedule_tick(md_defs, dg_instance, datetime(2024, 4, 2, 0, 15, tzinfo=UTC))
    requested = {
        (key, request.partition_key) for request in data.run_requests for key in request.asset_selection
    }
    assert requested == {
        (kline_asset_key(interval), f"2024-04-01|{symbol}")
        for interval in ("1h", "5m") for symbol in ("BTCUSDT", "ETHUSDT")
    }
    assert all(r.tags[TAG_REASON] == REASON_DAILY for r in data.run_requests)
    assert len({r.run_key for r in data.run_requests}) == len(data.run_requests) == 2
    # every run also runs the checks of the day
    assert all(len(r.asset_check_keys) == 8 for r in data.run_requests)  # rows, gaps, continuity, agrees_with_1m


def test_discovery_adds_configured_symbols_keeps_hand_added_ones_and_removes_only_what_the_exchange_delisted(
    md_resource, sim
):
    universe = ("BTCUSDT", "ETHUSDT", "NEWUSDT", "OLDUSDT", "NOPEUSDT")
    defs = build_definitions(CodeLocationConfig(symbols=universe, intervals=("1h",), start_date=date(2024, 1, 1)),
                             md_resource)
    with dg.instance_for_test() as instance:
        # OLDUSDT (configured) was added while it traded; SOLUSDT, GONEUSDT and XRPUSDT were added by hand
        # (the UI's "Add a partition"): SOL trades, GONE was delisted and dropped from exchangeInfo, XRP is
        # not listed by this exchange at all
        instance.add_dynamic_partitions("symbols", ["BTCUSDT", "OLDUSDT", "SOLUSDT", "GONEUSDT", "XRPUSDT"])
        data = tick(defs, "symbol_discovery", instance, md_resource)
        adds = [r for r in data.dynamic_partitions_requests if isinstance(r, dg.AddDynamicPartitionsRequest)]
        deletes = [r for r in data.dynamic_partitions_requests if isinstance(r, dg.DeleteDynamicPartitionsRequest)]
        assert [list(r.partition_keys) for r in adds] == [["ETHUSDT", "NEWUSDT"]]
        assert [list(r.partition_keys) for r in deletes] == [["GONEUSDT", "XRPUSDT"]]
        assert [list(r.asset_selection) for r in data.run_requests] == [[EXCHANGE_INFO_KEY]]

        # what the daemon does with the result: apply the partition requests, run exchange_info
        instance.add_dynamic_partitions("symbols", ["ETHUSDT", "NEWUSDT"])
        for symbol in ("GONEUSDT", "XRPUSDT"):
            instance.delete_dynamic_partition("symbols", symbol)
        assert execute_request(defs, instance, md_resource, data.run_requests[0]).success
        again = tick(defs, "symbol_discovery", instance, md_resource, cursor=data.cursor)
        assert again.run_requests == [] and not again.dynamic_partitions_requests
        assert "SOLUSDT" in instance.get_dynamic_partitions("symbols")  # hand-added, trading: stays

        # the delisted configured symbol keeps its partitions (history) but is no longer scheduled; the
        # hand-added trading symbol is scheduled like a configured one
        scheduled = _schedule_tick(defs, instance, datetime(2024, 4, 2, 0, 15, tzinfo=UTC)).run_requests
        assert "OLDUSDT" in instance.get_dynamic_partitions("symbols")
        assert sorted(r.partition_key for r in scheduled) == [
            "2024-04-01|BTCUSDT", "2024-04-01|ETHUSDT", "2024-04-01|NEWUSDT", "2024-04-01|SOLUSDT"
        ]


def test_archive_settlement_reruns_a_rest_loaded_day_once_the_archive_publishes_it(
    md_defs, dg_instance, md_resource, sim
):
    pk = "2024-04-01|BTCUSDT"
    sim.set_now("2024-04-02T06:00:00Z")  # the 2024-04-01 file appears at 08:30
    request = dg.RunRequest(asset_selection=[kline_asset_key("1h")], partition_key=pk)
    assert execute_request(md_defs, dg_instance, md_resource, request).success
    repo = md_resource.runtime().repo
    row = repo.get_ledger("klines", "BTCUSDT", "1h", date(2024, 4, 1), date(2024, 4, 1))[0]
    assert (row.sources, row.archive_checksum) == ({"rest": 24}, None)

    waiting = tick(md_defs, "archive_settlement", dg_instance, md_resource)
    assert waiting.run_requests == []
    assert "not in the archive yet" in waiting.skip_message

    sim.set_now("2024-04-02T12:00:00Z")
    data = tick(md_defs, "archive_settlement", dg_instance, md_resource)
    assert [(r.partition_key, r.tags[TAG_REASON]) for r in data.run_requests] == [(pk, REASON_SETTLEMENT)]
    assert execute_request(md_defs, dg_instance, md_resource, data.run_requests[0]).success
    row = repo.get_ledger("klines", "BTCUSDT", "1h", date(2024, 4, 1), date(2024, 4, 1))[0]
    assert row.sources == {"archive": 24} and len(row.archive_checksum) == 64
    assert tick(md_defs, "archive_settlement", dg_instance, md_resource).run_requests == []
