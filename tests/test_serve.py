"""`make demo`'s launcher (deploy/serve.py --sim-port): the local Binance, the webserver and the fast daemon
come up, symbol discovery runs against the simulator, Ctrl-C stops all of it with exit 0, and nothing of
the project's own warns or raises on the way."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tests.support.ui import BIN, ROOT, UiStack, free_port, wait_until

pytestmark = pytest.mark.xdist_group("ui_browser")

OUR_CODE = re.compile(r"marketdata_assets|marketdata_sim|streaming[./]|deploy/")


def test_demo_comes_up_discovers_symbols_and_stops_cleanly(tmp_path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "MARKETDATA_"))}
    env |= {"DAGSTER_HOME": str(home), "DATABASE_URL": f"sqlite:///{tmp_path / 'md.db'}",
            "MARKETDATA_AUTOMATION": "all", "DAGSTER_TELEMETRY_DISABLED": "1"}
    upgraded = subprocess.run([str(BIN / "marketdata"), "db", "upgrade"], env=env, capture_output=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "deploy" / "serve.py"), "--port", str(port),
                                 "--sim-port", str(sim_port)], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            stack = UiStack(url=f"http://127.0.0.1:{port}", env=env, home=home, db_path=tmp_path / "md.db",
                            artifacts=tmp_path, procs=[proc])

            def discovered() -> bool:
                stack.check_alive()
                runs = stack.graphql('{ runsOrError(filter: {tags: [{key: "dagster/sensor_name", '
                                     'value: "symbol_discovery"}]}) { ... on Runs { results { status } } } }')
                return any(r["status"] == "SUCCESS" for r in runs["runsOrError"]["results"])

            wait_until("symbol_discovery's exchange_info run against the local Binance", discovered, 180, poll_s=1)
        finally:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C on `make demo` sends
            code = proc.wait(timeout=60)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert f"Dagster UI on http://127.0.0.1:{port}" in output
    assert f"local Binance on http://127.0.0.1:{sim_port}" in output
    assert "Traceback" not in output, output[-3000:]
    assert "kill:" not in output and "will not be used" not in output  # no stray shell or Dagster noise
    ours = [line for line in output.splitlines() if re.search(r"warn", line, re.I) and OUR_CODE.search(line)]
    assert ours == [], ours
