"""The sidecar as users run it: `python -m streaming` stops cleanly on SIGTERM with everything flushed,
refuses unknown symbols, and other processes see committed rows through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.tables_stream import agg_trades
from streaming.events import EventBus, listen_postgres
from tests.support.streaming import _admin_conninfo, async_test, pg_database, pg_schema, requires_pg
from tests.test_streaming_sim import (
    SPEED,
    assert_trades_equal_truth,
    make_service,
    running,
    until,
    ws_control,
)

pytestmark = [requires_pg, pytest.mark.postgres, pytest.mark.slow]


def _env(sim, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BINANCE_FAPI_URL=sim.url, BINANCE_WS_URL=sim.ws_url, DATABASE_URL=database_url,
               PUBLISH_EVENTS="0", STORE_TO_DB="1")
    return env


def test_unknown_symbol_exits_with_a_clear_message(sim, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "streaming", "--symbols", "BTCUSDT", "NOSUCHUSDT", "--health-port", "0",
         "--spool-dir", str(tmp_path)],
        env=_env(sim, "postgresql://postgres@127.0.0.1:5432/test"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "NOSUCHUSDT" in result.stderr and "exchangeInfo" in result.stderr


def test_sigterm_flushes_and_exits_cleanly(sim, tmp_path):
    with pg_database() as (url, _name):
        process = subprocess.Popen(
            [sys.executable, "-m", "streaming", "--symbols", "BTCUSDT", "--streams", "trade", "kline",
             "--health-port", "0", "--spool-dir", str(tmp_path / "spool")],
            env=_env(sim, url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        engine = make_engine(url)
        try:
            ws_control(sim, "clock", speed=SPEED)
            deadline = time.monotonic() + 60
            count = 0
            while count < 50:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "no trades stored by the sidecar"
                with engine.connect() as conn:
                    count = conn.execute(sa.select(sa.func.count()).select_from(agg_trades)).scalar_one()
                time.sleep(0.1)  # polling the database from outside the process
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
            ws_control(sim, "clock", speed=None)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output
        assert "stopped cleanly" in output
        assert assert_trades_equal_truth(engine, sim, "BTCUSDT") >= count
        engine.dispose()


@async_test
async def test_other_processes_get_committed_rows_through_notify(sim, tmp_path):
    with pg_schema() as engine:
        service = make_service(sim, engine, tmp_path, symbols=("BTCUSDT",), publish_events=True)
        remote = EventBus()
        received: list[dict] = []
        remote.subscribe("market_data.trade", received.append)
        ready = asyncio.Event()
        dbname = sa.engine.make_url(str(engine.url)).database
        listener = asyncio.create_task(listen_postgres(_admin_conninfo(dbname), remote, ready))
        await asyncio.wait_for(ready.wait(), 10)
        try:
            async with running(service, sim):
                await until(lambda: len(received) >= 20, "trade events through NOTIFY")
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        ids = [event["agg_id"] for event in received]
        assert ids == sorted(ids) and all(event["symbol"] == "BTCUSDT" for event in received)
        with engine.connect() as conn:
            stored = set(conn.execute(sa.select(agg_trades.c.agg_id)).scalars())
        assert set(ids) <= stored  # only committed rows are announced


def test_a_health_port_in_use_is_exit_2_naming_it(sim, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "streaming", "--symbols", "BTCUSDT", "--health-port", str(port),
             "--spool-dir", str(tmp_path)],
            env=_env(sim, f"sqlite:///{tmp_path / 'md.db'}"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"--health-port {port}" in result.stderr and "Traceback" not in result.stderr
