"""`make run` / `make demo`: the Dagster webserver and the fast daemon (deploy/daemon.py), started together
and stopped together, with the local Binance beside them for the demo.

Why not `dagster dev`: its daemon runs the backfill loop every 30 s (a 1-second load takes ~46 s in the
UI), and the README's figures are measured with deploy/daemon.py. This supervisor starts each process in
its own process group, ends all of them when one exits or on Ctrl-C / SIGTERM (SIGTERM, then SIGKILL after
a bound), and says in one line why it stopped.

  python deploy/serve.py [--host 127.0.0.1] [--port 3000] [--sim-port 8765]

`--sim-port` also starts `marketdata sim` on that port and points every Binance URL at it (the demo); the
simulator's clock is real time. The processes run in $DAGSTER_HOME, so the instance is the one there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STOP_TIMEOUT_S = 20
SIM_START_TIMEOUT_S = 30


def _wait_for_sim(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + SIM_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the local Binance (marketdata sim --port {port}) exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"the local Binance did not answer on 127.0.0.1:{port} within {SIM_START_TIMEOUT_S} s")


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serve.py", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--sim-port", type=int, default=None, help="also start the local Binance on this port")
    parser.add_argument("--workspace", default=str(ROOT / "workspace.yaml"))
    args = parser.parse_args(argv)
    home = os.environ.get("DAGSTER_HOME")
    if not home or not Path(home, "dagster.yaml").is_file():
        print(f"DAGSTER_HOME={home!r}: expected a folder holding dagster.yaml (make run prepares it)",
              file=sys.stderr)
        return 2

    env = dict(os.environ)
    # the processes run in DAGSTER_HOME: the default SQLite store stays where it would be from here
    env.setdefault("DATABASE_URL", f"sqlite:///{Path.cwd() / 'data' / 'marketdata.db'}")
    procs: list[subprocess.Popen] = []
    stopping = False

    def on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def start(command: list[str]) -> subprocess.Popen:
        # cwd: DAGSTER_HOME, so Dagster does not warn about the repository's own dagster.yaml template
        proc = subprocess.Popen(command, cwd=home, env=env, start_new_session=True)
        procs.append(proc)
        return proc

    # a fresh SQLite instance created by the webserver, the daemon and the code server at once gets its
    # schema stamped twice (alembic: "more than one head"): create it here first
    from dagster import DagsterInstance

    DagsterInstance.get().dispose()
    try:
        if args.sim_port is not None:
            sim = start([str(BIN / "marketdata"), "sim", "--port", str(args.sim_port)])
            _wait_for_sim(args.sim_port, sim)
            from marketdata_sim.server import env_lines  # the simulator's own list of what points at it

            env.update(line.split("=", 1) for line in env_lines(f"http://127.0.0.1:{args.sim_port}"))
            print(f"local Binance on http://127.0.0.1:{args.sim_port} (marketdata sim)", flush=True)
        start([sys.executable, str(ROOT / "deploy" / "daemon.py"), "run", "-w", args.workspace])
        start([str(BIN / "dagster-webserver"), "-w", args.workspace, "-h", args.host, "-p", str(args.port)])
        print(f"Dagster UI on http://{args.host}:{args.port} (webserver + daemon, DAGSTER_HOME={home}); "
              "Ctrl-C stops everything", flush=True)
        while not stopping:
            exited = next((p for p in procs if p.poll() is not None), None)
            if exited is not None:
                print(f"{Path(exited.args[0]).name} {' '.join(map(str, exited.args[1:3]))} exited with "
                      f"{exited.returncode}: stopping the others", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        _stop(procs)


if __name__ == "__main__":
    sys.exit(main())
