"""Shared benchmark plumbing: a local Binance in its own process and a scratch PostgreSQL database.

The simulator runs as a separate process so that serving does not compete with the measured code for
the GIL; the machine has 2 cores, so the figures include that sharing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("marketdata_assets", "streaming", "marketdata_sim")
PG_ADMIN_URL = os.environ.get("MARKETDATA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def byte_compile(tree: Path = REPO) -> None:
    """Byte-compile the project's packages as `pip install` does. With PYTHONDONTWRITEBYTECODE set (it is on
    this machine) every measured process would otherwise compile them from source (50-100 ms a start),
    while a peer's installed packages start from their .pyc."""
    packages = [str(tree / name) for name in PACKAGES if (tree / name).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True, stdout=subprocess.DEVNULL)


@contextmanager
def sim_process(now: str, *extra: str) -> Iterator[str]:
    """`marketdata sim` on a free port with a frozen clock; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketdata_assets.cli.main", "sim", "--port", str(port), "--now", now, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/fapi/v1/ping", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"simulator did not start: {proc.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A freshly created PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def sim_env(url: str) -> dict[str, str]:
    return {
        "BINANCE_FAPI_URL": url,
        "BINANCE_ARCHIVE_URL": url,
        "BINANCE_ARCHIVE_LISTING_URL": f"{url}/data.binance.vision",
        "BINANCE_WS_URL": url.replace("http://", "ws://"),
    }
