"""Upstream faults through the console script: an archive host that accepts connections and never answers
(a frozen proxy in front of the simulator). The breaker stops asking it after a few timeouts, says so,
and the load takes every day from REST, complete and without failures."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from marketdata_assets.binance.rest import BinanceRestClient
from tests.support.netfault import freezable_proxy
from tests.support.ui import BIN


def test_a_hung_archive_host_is_given_up_quickly_and_rest_fills_every_day(sim, tmp_path):
    with freezable_proxy("127.0.0.1", sim.port) as proxy:
        proxy.freeze()  # accepts, reads, never answers
        env = {k: v for k, v in os.environ.items() if k not in ("MARKETDATA_CONFIG", "DAGSTER_HOME")}
        env.update(sim.env())
        env.update(BINANCE_ARCHIVE_URL=sim.env()["BINANCE_ARCHIVE_URL"].replace(f":{sim.port}", f":{proxy.port}"),
                   DATABASE_URL=f"sqlite:///{tmp_path / 'md.db'}")
        result = subprocess.run(
            [str(BIN / "marketdata"), "download", "--no-progress", "--symbols", "BTCUSDT", "--intervals", "1h",
             "--start", "2024-03-01", "--end", "2024-03-20"],
            env=env, capture_output=True, text=True, timeout=600)
        accepted = proxy.accepted
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is not answering" in result.stderr or "failures in a row" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith("BTCUSDT"))
    # symbol interval days rows archive rest gaps gap-bars failed
    assert row[2] == "20" and row[4] == "0" and row[5] == row[3] and row[8] == "0", result.stdout
    assert int(row[3]) + int(row[7]) == 20 * 24
    # without the breaker: 20 days x (checksum + zip) x 6 attempts; with it, a handful of timeouts and probes
    assert accepted < 20, accepted


def test_a_decompression_bomb_in_the_archive_is_refused_by_name_and_rest_fills_the_day(sim, tmp_path):
    import httpx

    bombs = [f"data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-0{d}.zip" for d in (1, 2)]
    assert httpx.post(f"{sim.url}/_sim/faults", json={"bomb": bombs}, timeout=10).status_code == 200
    env = {k: v for k, v in os.environ.items() if k not in ("MARKETDATA_CONFIG", "DAGSTER_HOME")}
    env.update(sim.env(), DATABASE_URL=f"sqlite:///{tmp_path / 'md.db'}")
    # Measured by a small parent of its own: a process's peak memory counts the address space it was
    # started from (vfork + exec), and the test worker's may be large.
    measure = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
               "sys.exit(code)")
    result = subprocess.run(
        [sys.executable, "-c", measure, str(tmp_path / "peak_kb"), str(BIN / "marketdata"), "download",
         "--no-progress", "--symbols", "BTCUSDT", "--intervals", "1m", "--start", "2024-03-01",
         "--end", "2024-03-03"], env=env, capture_output=True, text=True, timeout=600)
    peak_mb = int((tmp_path / "peak_kb").read_text()) / 1024
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("BTCUSDT-1m-2024-03-01.zip", "BTCUSDT-1m-2024-03-02.zip"):
        assert f"{name}: declares 1,07" in result.stderr and "this file may hold" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith("BTCUSDT"))
    # symbol interval days rows archive rest gaps gap-bars failed: two days from REST, one from the archive
    assert row[2] == "3" and row[8] == "0" and int(row[4]) > 0 and int(row[5]) > 0, result.stdout
    assert int(row[3]) + int(row[7]) == 3 * 1440
    assert peak_mb < 400, f"peak resident {peak_mb:.0f} MB: the 1 GiB member was inflated"


@pytest.mark.postgres
def test_a_database_that_freezes_mid_load_ends_the_command_and_a_rerun_completes_it(sim, tmp_path):
    """The server stops answering with the sockets open (its statement_timeout never fires): the client-side
    bound (hung_guard, a little above the URL's 2 s statement timeout) ends `download` with one line and
    exit 1; after the thaw a re-run stores the rest, and the days stored before the freeze are intact."""
    import time

    import sqlalchemy as sa

    from marketdata_assets.storage.engine import make_engine
    from marketdata_assets.storage.tables import kline_data
    from tests.support.streaming import pg_database

    def stored(url: str) -> int:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(kline_data)).scalar_one()
        finally:
            engine.dispose()

    with pg_database() as (url, _name), freezable_proxy() as proxy:
        via_proxy = sa.engine.make_url(url).set(port=proxy.port).update_query_dict(
            {"options": "-c statement_timeout=2s"}).render_as_string(hide_password=False)
        env = {k: v for k, v in os.environ.items() if k not in ("MARKETDATA_CONFIG", "DAGSTER_HOME")}
        env.update(sim.env(), DATABASE_URL=via_proxy)
        command = [str(BIN / "marketdata"), "download", "--no-progress", "--symbols", "BTCUSDT", "--intervals",
                   "1m", "--start", "2024-01-01", "--end", "2024-03-31"]
        load = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while stored(url) < 1440:
                assert load.poll() is None, load.communicate()
                assert time.monotonic() < deadline, "no day stored"
                time.sleep(0.05)  # polling the database from outside the process
            proxy.freeze()
            before = stored(url)
            out, err = load.communicate(timeout=120)  # would wait forever without the bound
        finally:
            if load.poll() is None:
                load.kill()
        assert load.returncode == 1, out + err
        assert "a database call has not returned" in err and "stopped after" in err and "Traceback" not in err, err
        assert stored(url) == before  # nothing stored was lost
        proxy.thaw()
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        row = next(line.split() for line in rerun.stdout.splitlines() if line.startswith("BTCUSDT"))
        assert row[8] == "0", rerun.stdout  # no day failed
        with BinanceRestClient(sim.url) as rest:
            truth = len(rest.klines("BTCUSDT", "1m", 1704067200000, 1711929600000))  # 2024-01-01 .. 03-31
        assert stored(url) == truth
