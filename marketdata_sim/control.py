"""The simulator's control API under /_sim/ (JSON): stats, faults, clock, limits, outages, reset, prewarm."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from aiohttp import web

from marketdata_sim.rest import MARKET_KEY


async def _json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def get_stats(request: web.Request) -> web.Response:
    from marketdata_sim.server import stats_of

    return web.json_response(stats_of(request.app))


async def faults(request: web.Request) -> web.Response:
    from marketdata_sim.server import FAULTS_KEY

    state = request.app[FAULTS_KEY]
    if request.method == "POST":
        try:
            state.update(await _json(request), request.app[MARKET_KEY].now_ms)
        except (TypeError, ValueError, AttributeError) as exc:
            raise web.HTTPBadRequest(text=f"bad fault description: {exc}") from None
    return web.json_response(state.describe())


async def clock(request: web.Request) -> web.Response:
    market = request.app[MARKET_KEY]
    if request.method == "POST":
        body = await _json(request)
        try:
            if "advance_ms" in body:
                market.advance(int(body["advance_ms"]))
            elif "now_ms" in body or "now" in body:
                market.set_now(body.get("now_ms", body.get("now")))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"bad clock value: {exc}") from None
    return web.json_response({"now_ms": market.now_ms, "frozen": market.frozen})


async def limits(request: web.Request) -> web.Response:
    from marketdata_sim.server import LIMITER_KEY

    cfg = request.app[LIMITER_KEY].config
    body = await _json(request) if request.method == "POST" else {}
    for name, value in body.items():
        if not hasattr(cfg, name):
            raise web.HTTPBadRequest(text=f"unknown limit {name!r}")
        setattr(cfg, name, int(value))
    return web.json_response(vars(cfg))


async def outages(request: web.Request) -> web.Response:
    market = request.app[MARKET_KEY]
    if request.method == "POST":
        body = await _json(request)
        try:
            market.set_outages(body.get("outages", []))
        except (TypeError, ValueError, IndexError) as exc:
            raise web.HTTPBadRequest(text=f"bad outages: {exc}") from None
    return web.json_response({"outages": [[s, e, sorted(x) if x else None] for s, e, x in market.outages]})


async def reset(request: web.Request) -> web.Response:
    from marketdata_sim.server import FAULTS_KEY, LIMITER_KEY, STATE_KEY

    request.app[LIMITER_KEY].reset()
    request.app[STATE_KEY].status_counts.clear()
    request.app[STATE_KEY].archive_requests = 0
    request.app[STATE_KEY].listing_requests = request.app[STATE_KEY].checksum_requests = 0
    request.app[FAULTS_KEY].update({"clear": True})
    return web.json_response({"ok": True})


async def prewarm(request: web.Request) -> web.Response:
    """Build daily archive files ahead (benchmarks): {"symbol","interval","start","end","data_type"}."""
    from marketdata_sim.server import ARCHIVE_KEY

    body = await _json(request)
    archive = request.app[ARCHIVE_KEY]
    dtype = body.get("data_type", "klines")
    symbol, interval = body.get("symbol", "BTCUSDT"), body.get("interval", "1m")
    try:
        day, end = date.fromisoformat(body["start"]), date.fromisoformat(body["end"])
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text="prewarm needs start and end as YYYY-MM-DD") from None
    keys = []
    while day <= end:
        folder = f"{symbol}/{interval}" if interval and dtype.endswith("lines") else symbol
        part = interval if dtype.endswith("lines") else dtype
        keys.append(f"data/futures/um/daily/{dtype}/{folder}/{symbol}-{part}-{day.isoformat()}.zip")
        day += timedelta(days=1)

    def build() -> int:
        built = 0
        for key in keys:
            f = archive.parse_key(key)
            if f is not None:
                archive.zip_bytes(f)
                built += 1
        return built

    built = await asyncio.get_running_loop().run_in_executor(None, build)
    return web.json_response({"built": built})


def add_control_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/stats", get_stats)
    r.add_route("*", "/_sim/faults", faults)
    r.add_route("*", "/_sim/clock", clock)
    r.add_route("*", "/_sim/limits", limits)
    r.add_route("*", "/_sim/outages", outages)
    r.add_post("/_sim/reset", reset)
    r.add_post("/_sim/prewarm", prewarm)
