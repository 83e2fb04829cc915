"""The sidecar as a real process (`marketdata stream`) for fault tests: started, read through its /health
and /metrics, stopped with SIGTERM or killed with SIGKILL. Output goes to a file (a pipe nobody reads
would fill and block the process)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.ui import BIN

HEALTH_LINE = re.compile(r"health on (http://[\d.]+:\d+)/health")


def sidecar_env(sim, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MARKETDATA_CONFIG", "DAGSTER_HOME")}
    env.update(BINANCE_FAPI_URL=sim.url, BINANCE_WS_URL=sim.ws_url, DATABASE_URL=database_url,
               PUBLISH_EVENTS="0", STORE_TO_DB="1", **extra)
    return env


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0, every: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)  # polling another process from outside


class Sidecar:
    """One `marketdata stream` process."""

    def __init__(self, sim, database_url: str, log_path: Path, *args: str, symbols: tuple[str, ...] = ("BTCUSDT",),
                 streams: tuple[str, ...] = ("trade", "kline"), env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        command = [str(BIN / "marketdata"), "stream", "--symbols", *symbols, "--streams", *streams,
                   "--health-port", "0", *args]
        self.process = subprocess.Popen(command, env=env or sidecar_env(sim, database_url), stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.base = wait_for(self._health_base, f"the sidecar's health line in {log_path}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _health_base(self) -> str | None:
        if self.process.poll() is not None:
            raise AssertionError(f"the sidecar exited with {self.process.returncode}:\n{self.output()}")
        found = HEALTH_LINE.findall(self.output())
        return found[-1] if found else None

    def health(self) -> dict[str, Any]:
        assert self.process.poll() is None, f"the sidecar exited:\n{self.output()}"
        return httpx.get(f"{self.base}/health", timeout=10).json()

    def metrics(self) -> str:
        return httpx.get(f"{self.base}/metrics", timeout=10).text

    def writer(self) -> dict[str, Any]:
        return self.health()["writer"]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code (the process flushes what it received first)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()
