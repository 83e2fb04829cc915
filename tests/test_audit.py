"""The audit of stored data, on a real Dagster instance against the simulator (SQLite and PostgreSQL).

Rows altered or deleted by hand after a load end in a failed `audit` check for exactly that partition (the
daily audit schedule's run or `marketdata audit`), and the repair sensor's run restores them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from marketdata_assets.defs.constants import kline_asset_key
from marketdata_assets.defs.datasets.audit import TAG_AUDIT_SCOPE, AuditScope
from marketdata_assets.storage.day_content import day_digests
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.storage.tables_funding import funding_rates
from marketdata_assets.storage.tables_market_stats import open_interest_metrics
from marketdata_assets.validation.audit import audit_day
from tests.support.datasets import repair_flow, run_dataset
from tests.support.defs import check_results, execute_request, tick

KEY = kline_asset_key("1h")
DAYS = ["2024-03-01|BTCUSDT", "2024-03-02|BTCUSDT", "2024-03-03|BTCUSDT"]
MIDDLE = DAYS[1]


def _bump(table: sa.Table, column: str, when: datetime, time_column: str):
    """Alter one stored value by hand, keeping the row plausible (a count or an amount, no invariant)."""
    def alter(resource) -> None:
        with resource.runtime().engine.begin() as conn:
            changed = conn.execute(sa.update(table).where(table.c.symbol == "BTCUSDT", table.c[time_column] == when)
                                   .values({column: table.c[column] + 1})).rowcount
        assert changed >= 1
    return alter


def test_the_digest_recorded_at_load_is_the_tables_and_changes_with_any_value(md_defs, dg_instance, md_resource):
    assert run_dataset(md_defs, dg_instance, md_resource, KEY, start=DAYS[0], end=DAYS[-1]).success
    repo = md_resource.runtime().repo
    ledger = {r.day: r for r in repo.get_ledger("klines", "BTCUSDT", "1h")}
    with md_resource.runtime().engine.connect() as conn:
        stored = day_digests(conn, "klines", "BTCUSDT", "1h", sorted(ledger))
    assert {day: row.content_digest for day, row in ledger.items()} == {day: d.digest for day, d in stored.items()}
    assert len({d.digest for d in stored.values()}) == 3 and {d.rows for d in stored.values()} == {24}
    _bump(kline_data, "trades_count", datetime(2024, 3, 2, 7, tzinfo=UTC), "open_time")(md_resource)
    with md_resource.runtime().engine.connect() as conn:
        after = day_digests(conn, "klines", "BTCUSDT", "1h", sorted(ledger))
    assert [after[d] == stored[d] for d in sorted(ledger)] == [True, False, True]
    assert after[date(2024, 3, 2)].rows == 24


def test_audit_schedule_fails_exactly_the_altered_partition_and_the_repair_run_restores_it(
        defs_config, dg_instance, store_resource):
    from marketdata_assets.defs import build_definitions

    defs = build_definitions(defs_config, store_resource)
    loaded = run_dataset(defs, dg_instance, store_resource, KEY, start=DAYS[0], end=DAYS[-1])
    assert loaded.success
    # the load run's own audit counts the rows (their digest was just read in the load's transaction)
    assert all("as this run's load stored them" in e.description
               for e in loaded.get_asset_check_evaluations() if e.check_name == "audit")
    repo = store_resource.runtime().repo
    before = repo.get_klines("BTCUSDT", "1h", date(2024, 3, 2), date(2024, 3, 3), exact=True)
    _bump(kline_data, "trades_count", datetime(2024, 3, 2, 7, tzinfo=UTC), "open_time")(store_resource)

    # the daily audit: recent days plus a history slot that holds 2024-03-02 (today's tick day is irrelevant)
    schedule = defs.resolve_schedule_def("audit_stored_data")
    with dg.build_schedule_context(instance=dg_instance, scheduled_execution_time=datetime(2024, 4, 2, 2, 30,
                                                                                          tzinfo=UTC)) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert list(request.asset_selection) == [] and dg.AssetCheckKey(KEY, "audit") in request.asset_check_keys
    scope = AuditScope.parse(request.tags[TAG_AUDIT_SCOPE])
    slot = date(2024, 3, 2).toordinal() % scope.cycle_days
    request = dg.RunRequest(asset_selection=[], asset_check_keys=[dg.AssetCheckKey(KEY, "audit")],
                            tags={**request.tags, TAG_AUDIT_SCOPE: AuditScope(0, scope.cycle_days, slot).tag})
    audited = check_results(execute_request(defs, dg_instance, store_resource, request), "audit")
    mine = {pk: e for (_, pk), e in audited.items() if pk.endswith("BTCUSDT")}
    assert set(mine) == {MIDDLE}  # the slot of a 30-day cycle holds one of the three days
    assert not mine[MIDDLE].passed and "rows altered since the load" in mine[MIDDLE].description
    assert repo.get_ledger("klines", "BTCUSDT", "1h", "2024-03-02", "2024-03-02")[0].check_status == "failed"

    first = tick(defs, "gap_repair", dg_instance, store_resource)
    assert [r.partition_key for r in first.run_requests] == [MIDDLE]
    assert "audit" in first.run_requests[0].tags["marketdata/gaps"]
    repaired = execute_request(defs, dg_instance, store_resource, first.run_requests[0])
    assert all(e.passed for e in repaired.get_asset_check_evaluations() if e.check_name == "audit")
    after = repo.get_klines("BTCUSDT", "1h", date(2024, 3, 2), date(2024, 3, 3), exact=True)
    assert after.equals(before)
    assert tick(defs, "gap_repair", dg_instance, store_resource, cursor=first.cursor).run_requests == []


@pytest.mark.parametrize("case", ["funding_rates", "metrics"])
def test_altered_rows_of_other_datasets_fail_their_audit_and_are_repaired(case, defs_config, dg_instance,
                                                                          store_resource):
    from marketdata_assets.defs import build_definitions

    alter, ledger = {
        "funding_rates": (_bump(funding_rates, "funding_rate", datetime(2024, 3, 4, 8, tzinfo=UTC), "funding_time"),
                          ("funding_rates", "")),
        "metrics": (_bump(open_interest_metrics, "sum_open_interest", datetime(2024, 3, 4, 12, tzinfo=UTC),
                          "create_time"), ("metrics", "")),
    }[case]
    defs = build_definitions(defs_config, store_resource)
    failed = repair_flow(defs, dg_instance, store_resource, dg.AssetKey(case), "2024-03-04|BTCUSDT",
                         f"gap_repair_{case}", lambda: alter(store_resource), ledger, check="audit")
    assert failed["stored_digest"] != failed["recorded_digest"]


def test_an_audit_only_run_does_not_clear_a_failing_gap_check(md_defs, dg_instance, md_resource):
    assert run_dataset(md_defs, dg_instance, md_resource, KEY, pk=MIDDLE).success
    repo = md_resource.runtime().repo
    repo.delete_klines("BTCUSDT", "1h", datetime(2024, 3, 2, 5, tzinfo=UTC), datetime(2024, 3, 2, 6, tzinfo=UTC))
    # the ledger's own count is the reference of the audit: bring it down as a partial reload would
    assert not check_results(run_dataset(md_defs, dg_instance, md_resource, KEY, start=MIDDLE, end=MIDDLE,
                                         checks_only=True), "gaps")[("gaps", MIDDLE)].passed
    with md_resource.runtime().engine.begin() as conn:
        conn.execute(sa.text("UPDATE partition_ledger SET actual_rows = 23, content_digest = NULL "
                             "WHERE dataset = 'klines' AND interval = '1h' AND day = :d AND symbol = 'BTCUSDT'"),
                     {"d": date(2024, 3, 2)})
    request = dg.RunRequest(asset_selection=[], asset_check_keys=[dg.AssetCheckKey(KEY, "audit")],
                            tags={TAG_AUDIT_SCOPE: AuditScope(0, 1, 0).tag})
    audited = check_results(execute_request(md_defs, dg_instance, md_resource, request), "audit")
    assert audited[("audit", MIDDLE)].passed
    assert repo.get_ledger("klines", "BTCUSDT", "1h", "2024-03-02", "2024-03-02")[0].check_status == "failed"
    assert [r.partition_key for r in tick(md_defs, "gap_repair", dg_instance, md_resource).run_requests] == [MIDDLE]


def test_audit_verdicts_name_what_changed():
    from marketdata_assets.storage.day_content import DayDigest
    from marketdata_assets.storage.ledger import LedgerRow

    day = date(2024, 1, 2)
    row = LedgerRow("klines", "BTCUSDT", "1m", day, 1440, 1440, "complete", content_digest="a" * 64)
    assert audit_day(day, row, DayDigest(1440, "a" * 64)).status == "passed"
    assert "5 row(s) lost" in audit_day(day, row, DayDigest(1435, "b" * 64)).description
    assert "2 row(s) more" in audit_day(day, row, DayDigest(1442, "b" * 64)).description
    assert "rows altered" in audit_day(day, row, DayDigest(1440, "b" * 64)).description
    assert audit_day(day, None, DayDigest(0, "e" * 64)).status == "warning"
    incomplete = LedgerRow("klines", "BTCUSDT", "1m", day, 1440, 700, "incomplete", content_digest="a" * 64)
    assert audit_day(day, incomplete, DayDigest(720, "c" * 64)).status == "passed"  # the stream wrote more
    assert audit_day(day, incomplete, DayDigest(690, "c" * 64)).status == "failed"


def test_marketdata_audit_exit_codes_and_the_partition_it_names(sim, tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'md.db'}", "DAGSTER_HOME": str(tmp_path / "dh"),
           "BINANCE_FAPI_URL": sim.url, "BINANCE_ARCHIVE_URL": sim.url,
           "BINANCE_ARCHIVE_LISTING_URL": sim.url + "/data.binance.vision", "MARKETDATA_START_DATE": "2024-01-01"}
    (tmp_path / "dh").mkdir()
    cli = [sys.executable, "-m", "marketdata_assets.cli.main"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=300)

    assert run("db", "upgrade").returncode == 0
    loaded = run("download", "--symbols", "BTCUSDT", "--intervals", "1h", "--start", "2024-03-01", "--end",
                 "2024-03-03", "--no-progress")
    assert loaded.returncode == 0, loaded.stderr
    span = ("--symbols", "BTCUSDT", "--intervals", "1h", "--start", "2024-03-01", "--end", "2024-03-03")
    ok = run("audit", *span)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 passed, 0 with warnings, 0 failed" in ok.stdout

    engine = sa.create_engine(env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.delete(kline_data).where(kline_data.c.open_time >= datetime(2024, 3, 2, 5, tzinfo=UTC),
                                                 kline_data.c.open_time < datetime(2024, 3, 2, 10, tzinfo=UTC)))
    engine.dispose()
    bad = run("audit", *span)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAILED klines_1h 2024-03-02|BTCUSDT audit: 5 row(s) lost since the load" in bad.stdout
    assert "2 passed, 0 with warnings, 1 failed" in bad.stdout
    assert "Traceback" not in bad.stderr

    with dg.DagsterInstance.from_config(str(tmp_path / "dh")) as instance:  # recorded where the UI reads
        records = instance.event_log_storage.get_asset_check_partition_info(
            [dg.AssetCheckKey(dg.AssetKey("klines_1h"), "audit")])
        assert {r.partition_key: r.latest_execution_status.value for r in records}["2024-03-02|BTCUSDT"] == "FAILED"

    for args, word in ((("--intervals", "7m"), "unknown interval"), (("--end", "2024-02-01"), "before --start")):
        wrong = run("audit", "--symbols", "BTCUSDT", "--start", "2024-03-01", *args)
        assert wrong.returncode == 2 and word in wrong.stderr and "Traceback" not in wrong.stderr
