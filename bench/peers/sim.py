"""The simulator's control API (/_sim/...) as the rows use it: counters, faults, archive prewarm, WS rates.

Why reset before every measured run: the simulator's weight windows and request counters are per IP, so
one tool's requests would otherwise slow or ban the next, and the counts printed per run would mix tools.
"""

from __future__ import annotations

from pathlib import Path

import httpx


def _post(url: str, path: str, body: dict | None = None, timeout: float = 600) -> dict:
    response = httpx.post(f"{url}{path}", json=body or {}, timeout=timeout)
    response.raise_for_status()
    return response.json()


def reset(url: str) -> None:
    """Counters, weight windows, bans and faults back to the start (the clock stays)."""
    _post(url, "/_sim/reset")


def stats(url: str) -> dict:
    response = httpx.get(f"{url}/_sim/stats", timeout=30)
    response.raise_for_status()
    return response.json()


def request_summary(url: str) -> dict:
    """What the last run asked: kline requests, all REST requests, weight spent, 429/418s, archive requests."""
    s = stats(url)
    return {"kline_requests": s["requests"].get("/fapi/v1/klines", 0), "rest_requests": sum(s["requests"].values()),
            "weight": s["total_weight"], "max_weight_1m": s["max_window_weight"],
            "http_429": s["count_429"], "http_418": s["count_418"], "archive_requests": s["archive_requests"]}


def set_faults(url: str, **spec: object) -> None:
    _post(url, "/_sim/faults", spec)


def prewarm(url: str, symbol: str, start: str, end: str) -> int:
    """Build the daily 1m zips ahead, so that no tool pays for the simulator's zip generation."""
    return _post(url, "/_sim/prewarm", {"symbol": symbol, "interval": "1m", "start": start, "end": end})["built"]


def archive_key(symbol: str, day: str) -> str:
    return f"data/futures/um/daily/klines/{symbol}/1m/{symbol}-1m-{day}.zip"


def set_clock(url: str, now_ms: int) -> None:
    """Set the market clock (frozen there unless the WebSocket hub drives it: stop that first)."""
    _post(url, "/_sim/clock", {"now_ms": now_ms}, timeout=30)


def ws(url: str, action: str, **body: object) -> object:
    return _post(url, f"/_sim/ws/{action}", body, timeout=30)["result"]


def ws_sent(url: str) -> int:
    """Frames the simulator has written to all its open WebSocket connections so far."""
    return sum(ws_sent_by_connection(url).values())


def ws_sent_by_connection(url: str) -> dict[int, int]:
    """Frames written so far per open WebSocket connection (a closed one is no longer listed)."""
    response = httpx.get(f"{url}/_sim/ws/state", timeout=30)
    response.raise_for_status()
    state = response.json()
    return {c["id"]: c["sent"] for c in state.get("result", state)["connections"]}


def pid_listening_on(port: int) -> int | None:
    """The simulator's pid, found by its command line (`sim --port N`), so its CPU can be read too."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"sim" in argv and b"--port" in argv and str(port).encode() in argv:
            return int(proc.name)
    return None
