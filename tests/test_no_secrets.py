"""No secret at rest or on screen: a database password and a Binance API key set in the environment appear
nowhere after a user's ordinary session (a plain download, one in Dagster, a failing command at -vv, the
sidecar at DEBUG): not in any file of the Dagster instance (run and event storage, compute logs), not in
any output or log, not in the store (a full pg_dump)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.sidecar import Sidecar, sidecar_env, wait_for
from tests.support.streaming import pg_database, requires_pg
from tests.support.ui import BIN
from tests.test_streaming_sim import SPEED, ws_control

pytestmark = [requires_pg, pytest.mark.postgres, pytest.mark.slow]

PASSWORD = "Pw-9f3c1e-never-shown"
API_KEY = "Key-77ab20d4-never-shown"


def _files_containing(root: Path, needles: tuple[bytes, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and any(n in path.read_bytes() for n in needles):
            found.append(str(path))
    return found


def test_a_password_and_an_api_key_are_nowhere_after_a_session(sim, tmp_path):
    with pg_database() as (url, name):
        # trust authentication here: the server never asks, so the password only travels through our code
        secret_url = sa.engine.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
        home = tmp_path / "dagster_home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("MARKETDATA_CONFIG",)}
        env.update(sim.env(), DATABASE_URL=secret_url, BINANCE_API_KEY=API_KEY, DAGSTER_HOME=str(home),
                   MARKETDATA_START_DATE="2024-01-01", MARKETDATA_INTERVALS="1h",
                   MARKETDATA_SYMBOLS="BTCUSDT", MARKETDATA_STATE_DIR=str(tmp_path / "state"))
        outputs: list[str] = []

        def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
            done = subprocess.run([str(BIN / "marketdata"), *args], env={**env, **extra}, capture_output=True,
                                  text=True, timeout=300, cwd=tmp_path)
            outputs.append(done.stdout + done.stderr)
            return done

        day = ("--symbols", "BTCUSDT", "--intervals", "1h")
        assert run("-v", "download", *day, "--start", "2024-02-09", "--end", "2024-02-09").returncode == 0
        assert run("-v", "download", *day, "--start", "2024-02-10", "--end", "2024-02-10",
                   "--in-dagster").returncode == 0
        assert run("-v", "gaps", "--symbols", "BTCUSDT").returncode == 0
        unreachable = sa.engine.make_url(secret_url).set(port=1).render_as_string(hide_password=False)
        failed = run("-vv", "gaps", "--symbols", "BTCUSDT", DATABASE_URL=unreachable)
        assert failed.returncode == 1 and "Traceback" in failed.stderr  # -vv: the whole traceback

        ws_control(sim, "clock", speed=SPEED)
        sidecar = Sidecar(sim, secret_url, tmp_path / "sidecar.log", "--spool-dir", str(tmp_path / "spool"),
                          "--log-level", "DEBUG",
                          env={**sidecar_env(sim, secret_url), "BINANCE_API_KEY": API_KEY,
                               "MARKETDATA_STATE_DIR": str(tmp_path / "state")})
        try:
            started = time.monotonic()
            wait_for(lambda: time.monotonic() - started > 1 and sidecar.health()["writer"]["batches_written"] > 0,
                     "the sidecar to commit something")
            assert sidecar.stop() == 0
        finally:
            sidecar.kill()
            ws_control(sim, "clock", speed=None)
        outputs.append(sidecar.output())

        dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only", name],
                              capture_output=True, text=True, timeout=120)
        assert dump.returncode == 0, dump.stderr
        assert "kline_data" in dump.stdout and "agg_trades" in dump.stdout

    for secret in (PASSWORD, API_KEY):
        assert not [o for o in outputs if secret in o], f"{secret} shown on screen or in a log"
        assert secret not in dump.stdout, f"{secret} stored in the database"
    assert _files_containing(home, (PASSWORD.encode(), API_KEY.encode())) == []
    assert _files_containing(tmp_path / "spool", (PASSWORD.encode(), API_KEY.encode())) == []
