"""Upstream faults through the console script: an archive host that accepts connections and never answers
(a frozen proxy in front of the simulator). The breaker stops asking it after a few timeouts, says so,
and the load takes every day from REST, complete and without failures."""

from __future__ import annotations

import os
import subprocess

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
    import resource

    import httpx

    bombs = [f"data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-0{d}.zip" for d in (1, 2)]
    assert httpx.post(f"{sim.url}/_sim/faults", json={"bomb": bombs}, timeout=10).status_code == 200
    env = {k: v for k, v in os.environ.items() if k not in ("MARKETDATA_CONFIG", "DAGSTER_HOME")}
    env.update(sim.env(), DATABASE_URL=f"sqlite:///{tmp_path / 'md.db'}")
    result = subprocess.run(
        [str(BIN / "marketdata"), "download", "--no-progress", "--symbols", "BTCUSDT", "--intervals", "1m",
         "--start", "2024-03-01", "--end", "2024-03-03"],
        env=env, capture_output=True, text=True, timeout=600)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("BTCUSDT-1m-2024-03-01.zip", "BTCUSDT-1m-2024-03-02.zip"):
        assert f"{name}: declares 1,07" in result.stderr and "this file may hold" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith("BTCUSDT"))
    # symbol interval days rows archive rest gaps gap-bars failed: two days from REST, one from the archive
    assert row[2] == "3" and row[8] == "0" and int(row[4]) > 0 and int(row[5]) > 0, result.stdout
    assert int(row[3]) + int(row[7]) == 3 * 1440
    assert peak_mb < 600, f"peak resident {peak_mb:.0f} MB: the 1 GiB member was inflated"
