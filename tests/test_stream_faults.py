"""Fault tests of the sidecar as users run it (`marketdata stream`, a real process, real PostgreSQL, the
simulator at 60x: one 1m bar per wall second). After each fault the stored klines and trades equal the
simulator's truth, and every window the sidecar could not see is a `stream_gaps` row.

- the database away when the sidecar starts (30 s): it records into its spool, migrates and replays once
  the database is back;
- the spool full (its cap) during an outage: batches are held in memory, /health and /metrics say so,
  nothing received is lost;
- killed (SIGKILL) across minute boundaries and started again: the bars that closed meanwhile come from
  REST, and the window is recorded;
- the database frozen (a proxy that stops answering, sockets open): /health says db_stuck, the hung call
  is cut off after --db-timeout and batches spool until the database answers again.
"""

from __future__ import annotations

import contextlib
import time

import pytest
import sqlalchemy as sa

from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.tables import kline_data
from tests.support.disk import small_tmpfs
from tests.support.netfault import freezable_proxy
from tests.support.sidecar import Sidecar, sidecar_env, wait_for
from tests.support.streaming import bring_database_back, pg_database, requires_pg, take_database_away
from tests.test_streaming_sim import (
    SPEED,
    assert_klines_equal_truth,
    assert_trades_equal_truth,
    gap_rows,
    ws_control,
)

pytestmark = [requires_pg, pytest.mark.postgres, pytest.mark.slow]


def kline_count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(kline_data)).scalar_one()
    except sa.exc.OperationalError:
        return 0  # the database is away
    finally:
        engine.dispose()


def market_minute(sim) -> int:
    with BinanceRestClient(sim.url) as rest:
        return rest.server_time_ms() // 60_000


def assert_truth(url: str, sim, symbol: str = "BTCUSDT") -> None:
    engine = make_engine(url)
    try:
        assert assert_klines_equal_truth(engine, sim, symbol) >= 3
        assert assert_trades_equal_truth(engine, sim, symbol) > 0
    finally:
        engine.dispose()


def recover_and_stop(sidecar: Sidecar, url: str, what: str) -> None:
    """The database answers again: everything spooled or held is written, new bars follow, SIGTERM is clean."""
    wait_for(lambda: (w := sidecar.writer())["state"] == "ok" and w["held_rows"] == 0 and w["spool_bytes"] == 0,
             what, timeout=90)
    stored = kline_count(url)
    wait_for(lambda: kline_count(url) >= stored + 3, "bars after the fault")
    assert sidecar.stop() == 0, sidecar.output()


def assert_said(sidecar: Sidecar, *phrases: str) -> None:
    output = sidecar.output()
    assert "Traceback" not in output
    for phrase in phrases:
        assert phrase in output, phrase


def test_database_away_at_start_is_spooled_then_migrated_and_replayed(sim, tmp_path):
    with pg_database() as (url, name):
        take_database_away(name)
        ws_control(sim, "clock", speed=SPEED)
        sidecar = Sidecar(sim, url, tmp_path / "sidecar.log", "--spool-dir", str(tmp_path / "spool"))
        try:
            writer = wait_for(lambda: (w := sidecar.writer())["spool_bytes"] > 0 and w, "batches in the spool")
            assert writer["state"] == "db_down" and sidecar.health()["status"] == "degraded"
            assert "marketdata_stream_db_up 0" in sidecar.metrics()
            away_since = time.monotonic()
            # the outage lasts 30 s; the sidecar keeps recording throughout
            wait_for(lambda: time.monotonic() - away_since >= 30 and sidecar.writer()["state"] == "db_down",
                     "30 s of outage", timeout=60, every=1)
            bring_database_back(name)
            recover_and_stop(sidecar, url, "the spool replayed")
        finally:
            sidecar.kill()
            ws_control(sim, "clock", speed=None)
        assert_said(sidecar, "the database is not reachable: recording into the spool")
        assert kline_count(url) >= 30  # the bars of the outage came from the spool
        assert_truth(url, sim)


@pytest.mark.parametrize("full", ["cap", "disk"])
def test_spool_full_during_an_outage_holds_batches_and_loses_nothing(sim, tmp_path, full):
    with pg_database() as (url, name), contextlib.ExitStack() as stack:
        ws_control(sim, "clock", speed=SPEED)
        if full == "cap":
            spool = ("--spool-dir", str(tmp_path / "spool"), "--spool-max-mb", "0.02")
        else:  # a real disk that fills up (ENOSPC)
            spool = ("--spool-dir", str(stack.enter_context(small_tmpfs(tmp_path / "disk", 24)) / "spool"))
        sidecar = Sidecar(sim, url, tmp_path / "sidecar.log", *spool, "--max-buffered-rows", "300")
        try:
            wait_for(lambda: kline_count(url) >= 2, "bars stored before the outage")
            take_database_away(name)
            writer = wait_for(lambda: (w := sidecar.writer())["backpressure"] and w,
                              "the spool to fill up and the held batches to reach the memory bound", timeout=90)
            assert writer["state"] == "spool_full" and writer["spool_bytes"] <= 24 * 1024
            assert 0 < writer["held_rows"] + writer["pending_rows"] <= 2 * 300  # the bound, plus one batch taken
            assert sidecar.health()["status"] == "degraded"
            metrics = sidecar.metrics()
            assert "marketdata_stream_spool_full 1" in metrics
            assert "marketdata_stream_rows_held 0\n" not in metrics
            # the streams wait while the market moves on for a few bars; then the database is back
            held_at = market_minute(sim)
            wait_for(lambda: market_minute(sim) >= held_at + 5 and sidecar.writer()["backpressure"],
                     "five bars under backpressure")
            bring_database_back(name)
            recover_and_stop(sidecar, url, "held and spooled batches written")
        finally:
            sidecar.kill()
            ws_control(sim, "clock", speed=None)
        assert_said(sidecar, "holding batches in memory",
                    "reached its cap" if full == "cap" else "No space left on device")
        assert_truth(url, sim)


def test_killed_across_minute_boundaries_the_restart_fills_the_bars_and_records_the_window(sim, tmp_path):
    with pg_database() as (url, _name):
        ws_control(sim, "clock", speed=SPEED)
        spool = ("--spool-dir", str(tmp_path / "spool"))
        try:
            first = Sidecar(sim, url, tmp_path / "first.log", *spool)
            wait_for(lambda: kline_count(url) >= 3, "bars from the first run")
            first.kill()  # SIGKILL: no flush, no goodbye
            stored = kline_count(url)
            killed_at = market_minute(sim)
            wait_for(lambda: market_minute(sim) >= killed_at + 4, "four bars to close while it is down")
            second = Sidecar(sim, url, tmp_path / "second.log", *spool)
            wait_for(lambda: kline_count(url) >= stored + 6, "the missed bars and new ones")
            wait_for(lambda: {(g.data_type, g.state) for g in gap_rows(make_engine(url))
                              if g.reason == "sidecar restart"} >= {("kline", "filled"), ("trade", "filled")},
                     "the restart windows recorded as filled")
            assert second.stop() == 0, second.output()
        finally:
            for process in (locals().get("first"), locals().get("second")):
                if process is not None:
                    process.kill()
            ws_control(sim, "clock", speed=None)
        engine = make_engine(url)
        restart = [g for g in gap_rows(engine) if g.reason == "sidecar restart" and g.data_type == "kline"]
        engine.dispose()
        assert len(restart) == 1 and restart[0].rows_filled >= 4
        assert_truth(url, sim)


def test_frozen_database_is_reported_cut_off_and_spooled(sim, tmp_path):
    with pg_database() as (url, _name), freezable_proxy() as proxy:
        via_proxy = sa.engine.make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
        ws_control(sim, "clock", speed=SPEED)
        sidecar = Sidecar(sim, via_proxy, tmp_path / "sidecar.log", "--spool-dir", str(tmp_path / "spool"),
                          "--db-timeout", "3")
        try:
            wait_for(lambda: kline_count(url) >= 2, "bars stored before the freeze")
            proxy.freeze()
            wait_for(lambda: sidecar.writer()["db_stuck"], "/health to report the stuck database")
            assert sidecar.health()["status"] == "degraded"
            assert "marketdata_stream_db_stuck 1" in sidecar.metrics()
            wait_for(lambda: (w := sidecar.writer())["state"] == "db_down" and w["spool_bytes"] > 0,
                     "the hung call cut off and batches spooled")
            frozen_at = market_minute(sim)
            wait_for(lambda: market_minute(sim) >= frozen_at + 3, "three bars while frozen")
            proxy.thaw()
            recover_and_stop(sidecar, url, "the spool replayed after the thaw")
        finally:
            sidecar.kill()
            ws_control(sim, "clock", speed=None)
        assert_said(sidecar, "has not returned for 3 s: cutting it off")
        assert_truth(url, sim)


def test_two_sidecars_with_default_settings_keep_their_own_spools(sim, tmp_path):
    """Same host, same $TMPDIR, no --spool-dir: A's database is away, so A spools; B must never replay A's
    batches into B's database, and A gets all of its own back."""
    with pg_database() as (url_a, name_a), pg_database() as (url_b, _name_b):
        ws_control(sim, "clock", speed=SPEED)
        extra = {"TMPDIR": str(tmp_path)}
        try:
            a = Sidecar(sim, url_a, tmp_path / "a.log", symbols=("BTCUSDT",),
                        env={**sidecar_env(sim, url_a), **extra})
            wait_for(lambda: kline_count(url_a) >= 2, "A's first bars")
            take_database_away(name_a)
            wait_for(lambda: a.writer()["spool_bytes"] > 0, "A spooling")
            b = Sidecar(sim, url_b, tmp_path / "b.log", symbols=("ETHUSDT",),
                        env={**sidecar_env(sim, url_b), **extra})
            wait_for(lambda: kline_count(url_b) >= 3, "B's bars")
            assert a.writer()["spool_dir"] != b.writer()["spool_dir"]
            assert a.writer()["spool_bytes"] > 0  # B left A's spool alone
            bring_database_back(name_a)
            recover_and_stop(a, url_a, "A's spool replayed")
            assert b.stop() == 0
        finally:
            for process in (locals().get("a"), locals().get("b")):
                if process is not None:
                    process.kill()
            ws_control(sim, "clock", speed=None)
        engine = make_engine(url_b)
        with engine.connect() as conn:
            symbols = set(conn.execute(sa.select(kline_data.c.symbol).distinct()).scalars())
        engine.dispose()
        assert symbols == {"ETHUSDT"}
        assert_truth(url_a, sim, "BTCUSDT")
        assert_truth(url_b, sim, "ETHUSDT")
