"""The Dagster instance side of fast backfills: the pooled PostgreSQL event log, the tuned daemon entry
point, and the vectorised OHLC check agreeing with the per-day one it replaces in range runs."""

from __future__ import annotations

import importlib.util
import inspect
import secrets
import subprocess
import sys
import warnings
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


# -- vectorised OHLC ----------------------------------------------------------------------------------
def _hour_bars(first: date, days: int) -> pd.DataFrame:
    times = pd.date_range(pd.Timestamp(first, tz="UTC"), periods=24 * days, freq="h").as_unit("ms")
    price = np.linspace(100.0, 110.0, len(times))
    return pd.DataFrame({
        "open_time": times, "open": price, "high": price + 1, "low": price - 1, "close": price + 0.5,
        "volume": 10.0, "quote_volume": 1000.0, "taker_buy_volume": 4.0, "taker_buy_quote_volume": 400.0,
        "trades_count": 7,
    })


def test_range_ohlc_check_finds_the_broken_bars_of_each_day_like_the_per_day_check():
    from marketdata_assets.validation import kline_checks as ev

    first = date(2024, 3, 1)
    frame = _hour_bars(first, 3)
    frame.loc[30, "low"] = frame.loc[30, "open"] + 5          # day 2: low above open
    frame.loc[60, "taker_buy_volume"] = 11.0                  # day 3: taker buy above volume
    days = [first + timedelta(days=i) for i in range(4)]       # day 4 has no rows

    ranged = ev.check_ohlc_days(days, frame)
    per_day = ev.split_by_day(frame, days)
    for day in days[:3]:
        single = ev.check_ohlc(day, per_day[day])
        assert (ranged[day].status, ranged[day].description, ranged[day].metadata) == (
            single.status, single.description, single.metadata)
    assert [ranged[d].status for d in days] == [ev.PASSED, ev.FAILED, ev.FAILED, ev.PASSED]
    assert "low > open/close" in ranged[days[1]].metadata["violations"][0]
    assert "taker buy > volume" in ranged[days[2]].metadata["violations"][0]
    assert ranged[days[3]].description == "no rows to check"


def test_combined_row_verdict_names_each_part_that_did_not_pass():
    from marketdata_assets.validation import kline_checks as ev

    day = date(2024, 3, 1)
    ok = ev.combine_parts(day, {"schema": ev.DayCheck(day, ev.PASSED, "schema valid"),
                                "ohlc": ev.DayCheck(day, ev.PASSED, "OHLC invariants hold", {"violations": 0})})
    assert (ok.status, ok.description) == (ev.PASSED, "schema valid; OHLC invariants hold")
    assert ok.metadata == {"schema_status": "passed", "ohlc_status": "passed"}
    bad = ev.combine_parts(day, {"schema": ev.DayCheck(day, ev.PASSED, "schema valid"),
                                 "duplicates": ev.DayCheck(day, ev.FAILED, "2 duplicate open time(s)",
                                                           {"duplicates": ["t1", "t2"]})})
    assert bad.status == ev.FAILED and not bad.passed
    assert bad.description == "duplicates failed: 2 duplicate open time(s)"
    assert bad.metadata["duplicates_duplicates"] == ["t1", "t2"]


# -- pooled PostgreSQL event log ----------------------------------------------------------------------
@pytest.fixture
def pg_dagster_db():
    import sqlalchemy as sa

    from tests.support.db import PG_URL

    name = f"dg_{secrets.token_hex(5)}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # generated name, not input
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_pooled_event_log_stores_a_partitioned_run_and_reuses_its_connection(pg_dagster_db, tmp_path, monkeypatch):
    import sqlalchemy as sa
    import yaml

    from marketdata_assets.dagster_storage import PooledPostgresEventLogStorage

    for key, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
                       "DAGSTER_PG_DB": pg_dagster_db}.items():
        monkeypatch.setenv(key, value)
    config = yaml.safe_load((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
    config["local_artifact_storage"]["config"]["base_dir"] = str(tmp_path)
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily)
    def days(context) -> None:  # noqa: ANN001 - string annotations confuse Dagster under __future__
        context.log.info(f"{len(context.partition_keys)} day(s)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        spec = dg.AssetCheckSpec("even", asset="days", partitions_def=daily)

    @dg.multi_asset_check(specs=[spec], can_subset=True)  # as the kline checks: results per partition
    def even(context):  # noqa: ANN001, ANN202
        for key in context.partition_keys:
            yield dg.AssetCheckEvaluation(asset_key=dg.AssetKey("days"), check_name="even",
                                          passed=int(key[-2:]) % 2 == 0, partition=key)

    with dg.instance_for_test(overrides=config) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledPostgresEventLogStorage)
        assert isinstance(storage._engine.pool, sa.pool.QueuePool)
        result = dg.materialize([days, even], instance=instance, tags={
            "dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-10"})
        assert result.success
        assert len(instance.get_materialized_partitions(dg.AssetKey("days"))) == 10
        # one planned row per partition (written by the override), each updated by its own result
        from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable

        with storage.index_connection() as conn:
            rows = conn.execute(sa.select(AssetCheckExecutionsTable.c.partition,
                                          AssetCheckExecutionsTable.c.execution_status)
                                .where(AssetCheckExecutionsTable.c.run_id == result.run_id)).all()
        assert len(rows) == 10
        assert {p: s for p, s in rows} == {
            f"2024-01-{d:02d}": "SUCCEEDED" if d % 2 == 0 else "FAILED" for d in range(1, 11)}
        # many events, few connections: the pool's one connection was checked out again and again
        assert storage._engine.pool.checkedin() >= 1
        assert storage._engine.pool.size() == 1


# -- tuned daemon entry point -------------------------------------------------------------------------
def _daemon_module():
    spec = importlib.util.spec_from_file_location("md_deploy_daemon", ROOT / "deploy" / "daemon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_backfill_loop_interval_deploy_daemon_sets_is_still_where_dagster_reads_it():
    # deploy/daemon.py sets a private constant of the pinned Dagster: fail loudly if an upgrade moves it
    from dagster._daemon import backfill, controller

    assert controller.DEFAULT_DAEMON_INTERVAL_SECONDS == 30
    source = inspect.getsource(backfill.execute_backfill_iteration_loop)
    assert "from dagster._daemon.controller import DEFAULT_DAEMON_INTERVAL_SECONDS" in source
    assert "DEFAULT_DAEMON_INTERVAL_SECONDS - loop_duration" in source


def test_daemon_interval_comes_from_the_environment(monkeypatch):
    daemon = _daemon_module()
    monkeypatch.delenv("MARKETDATA_BACKFILL_INTERVAL_SECONDS", raising=False)
    assert daemon.backfill_interval_seconds() == 5
    monkeypatch.setenv("MARKETDATA_BACKFILL_INTERVAL_SECONDS", "2")
    assert daemon.backfill_interval_seconds() == 2


@pytest.mark.parametrize("value", ["0", "31", "fast"])
def test_a_bad_daemon_interval_names_the_variable(value):
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "daemon.py"), "run", "--help"],
        env={"MARKETDATA_BACKFILL_INTERVAL_SECONDS": value, "PATH": ""}, capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert f"MARKETDATA_BACKFILL_INTERVAL_SECONDS={value!r}" in result.stderr
