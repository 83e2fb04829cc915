"""Real-browser fixtures (owner: UI tests). Registered from conftest.py via `pytest_plugins`.

- `ui_stack` (module scope): the simulator (default outages, clock at 2024-04-02T12:00Z), a scratch
  DAGSTER_HOME with the repository's dagster.yaml (SQLite instance), the market data in a SQLite file
  (`marketdata db upgrade`), then what `make run` starts: `deploy/serve.py` (dagster-webserver and
  deploy/daemon.py, backfill loop every UI_BACKFILL_INTERVAL_S) on a free port, BTCUSDT x 1m from
  2024-01-01. The supervisor stops its processes on SIGTERM; its group is killed at teardown if not.
- `ui_page` (module scope): a Playwright page in Debian's chromium (/usr/bin/chromium, headless; a browser
  is never downloaded), 1600x1000.
- `shot(page, name)`: a full-page screenshot under the artifacts folder (MARKETDATA_TEST_ARTIFACTS,
  default <repo>/test-artifacts/ui/).
- `wait_until(what, condition, timeout_s)`: poll a condition until it returns something truthy, with a
  deadline (the error names what was awaited and the last value seen).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
UI_SIM_NOW = "2024-04-02T12:00:00Z"
UI_SYMBOL, UI_INTERVAL, UI_START_DATE = "BTCUSDT", "1m", "2024-01-01"
UI_BACKFILL_INTERVAL_S = 2
UI_DISCOVERY_INTERVAL_S = 30  # symbol_discovery ticks this often here (3600 by default)
LOCATION = "marketdata"


def artifacts_dir() -> Path:
    path = Path(os.environ.get("MARKETDATA_TEST_ARTIFACTS") or ROOT / "test-artifacts" / "ui")
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, condition: Callable[[], Any], timeout_s: float, poll_s: float = 0.5) -> Any:
    """`condition()` until it is truthy (returned) or the deadline passes (AssertionError naming `what`).
    An exception inside `condition` counts as not yet, and is shown if the deadline passes."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = condition()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - not ready yet; reported at the deadline
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {last!r}")
        time.sleep(poll_s)


@dataclass
class UiStack:
    url: str
    env: dict[str, str]
    home: Path
    db_path: Path
    artifacts: Path
    sim: Any = None  # the marketdata_sim.SimServer the deployment points at (its clock can be moved)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(self.url + "/graphql", json={"query": query, "variables": variables or {}},
                              timeout=30)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {json.dumps(body['errors'])[:2000]}")
        return body["data"]

    def marketdata(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """`marketdata ARGS` with the deployment's environment (DAGSTER_HOME, DATABASE_URL, MARKETDATA_*,
        BINANCE_*)."""
        return subprocess.run([str(BIN / "marketdata"), *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[:2]} exited with {proc.returncode}; see {self.artifacts}/*.log")


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # run workers started by the daemon live in the daemon's group; a straggler of the group goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def _location_loaded(stack: UiStack) -> bool:
    stack.check_alive()
    entries = stack.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


@contextlib.contextmanager
def start_ui_stack() -> Iterator[UiStack]:
    """The deployment `ui_stack` serves (also usable from a script to explore the UI by hand)."""
    from marketdata_sim import SimServer

    artifacts = artifacts_dir()
    home = Path(tempfile.mkdtemp(prefix="md_ui_home_"))
    procs: list[subprocess.Popen] = []
    logs = []
    sim = SimServer(now=UI_SIM_NOW).start()
    try:
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        db_path = home / "marketdata.db"
        port = free_port()
        env = {**os.environ, **sim.env(), "DAGSTER_HOME": str(home), "DATABASE_URL": f"sqlite:///{db_path}",
               "MARKETDATA_SYMBOLS": UI_SYMBOL, "MARKETDATA_INTERVALS": UI_INTERVAL,
               "MARKETDATA_START_DATE": UI_START_DATE,
               "MARKETDATA_BACKFILL_INTERVAL_SECONDS": str(UI_BACKFILL_INTERVAL_S),
               "MARKETDATA_DISCOVERY_INTERVAL_SECONDS": str(UI_DISCOVERY_INTERVAL_S),
               "DAGSTER_TELEMETRY_DISABLED": "1"}
        env.pop("DAGSTER_URL", None)
        stack = UiStack(url=f"http://127.0.0.1:{port}", env=env, home=home, db_path=db_path, artifacts=artifacts,
                        sim=sim, procs=procs)
        upgraded = stack.marketdata("db", "upgrade", timeout=120)
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        # what `make run` starts: deploy/serve.py (dagster-webserver + deploy/daemon.py, one process group each)
        log = open(artifacts / "serve.log", "w")  # noqa: SIM115 - closed at teardown
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "deploy" / "serve.py"), "--port", str(port)],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        wait_until("the webserver to load the code location", lambda: _location_loaded(stack), 180, poll_s=1)
        yield stack
    finally:
        _stop(procs)
        for log in logs:
            log.close()
        sim.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def ui_stack() -> Iterator[UiStack]:
    with start_ui_stack() as stack:
        yield stack


@pytest.fixture(scope="module")
def ui_browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def ui_page(ui_browser) -> Iterator:
    context = ui_browser.new_context(viewport={"width": 1600, "height": 1000})
    # the community newsletter dialog would cover the page: dismissed as a user's earlier "Skip" leaves it
    context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
    context.set_default_timeout(30_000)
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # a page's queries take seconds on a loaded 2-core machine
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def shot(page, name: str, *, full_page: bool = True) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
