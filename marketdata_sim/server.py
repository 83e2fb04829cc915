"""The simulator's HTTP app (REST + archive + control API on one port) and a threaded server for tests.

WebSocket routes live in a separate module: if `marketdata_sim.ws` defines `add_ws_routes(app, market)`,
build_app calls it, so the WS side can be added without touching this file.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import io
import threading
import zipfile
from collections import Counter
from dataclasses import dataclass, field, fields

from aiohttp import web

from marketdata_sim.archive import ZIP_TIME, Archive, checksum_text, http_date, last_modified, no_such_key
from marketdata_sim.control import add_control_routes
from marketdata_sim.faults import Faults
from marketdata_sim.market import DEFAULT_OUTAGES, SimMarket
from marketdata_sim.ratelimit import LimitConfig, RateLimiter
from marketdata_sim.rest import MARKET_KEY, BinanceError, add_rest_routes, error_response, request_weight

ARCHIVE_KEY = web.AppKey("archive", Archive)
FAULTS_KEY = web.AppKey("faults", Faults)
LIMITER_KEY = web.AppKey("limiter", RateLimiter)


@dataclass
class SimState:
    """Mutable per-app state (the app itself is frozen once it runs)."""

    config: SimConfig
    limits: LimitConfig
    status_counts: Counter = field(default_factory=Counter)
    archive_requests: int = 0
    listing_requests: int = 0
    checksum_requests: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)  # set at shutdown: hung requests end


STATE_KEY: web.AppKey[SimState] = web.AppKey("sim_state", SimState)


@dataclass
class SimConfig:
    """Server-side knobs (the market's own are seed, outages, now)."""

    weight_limit: int = 2400
    window_ms: int = 60_000
    ban_after: int = 3
    ban_ms: int = 120_000
    funding_limit: int = 500
    rate_clock: str = "wall"  # "wall" or "market" (the market's frozen clock drives the windows)
    faults: dict = field(default_factory=dict)
    archive_cache_bytes: int = 512 * 1024 * 1024

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> SimConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(kwargs) - names
        if unknown:
            raise TypeError(f"unknown simulator option(s): {', '.join(sorted(unknown))}")
        return cls(**kwargs)  # type: ignore[arg-type]

    def limit_config(self) -> LimitConfig:
        return LimitConfig(self.weight_limit, self.window_ms, self.ban_after, self.ban_ms, self.funding_limit)


@web.middleware
async def _sim_middleware(request: web.Request, handler):  # noqa: ANN001, ANN202
    app = request.app
    path = request.path
    if path.startswith("/_sim/"):
        return await handler(request)
    state = app[STATE_KEY]
    stats = state.status_counts
    faults = app[FAULTS_KEY]
    if faults.take_hang(path):
        await state.release.wait()
        raise web.HTTPServiceUnavailable()
    delay = faults.take_delay(path)
    if delay:
        await asyncio.sleep(delay / 1000)
    status = faults.take_error(path)
    if status is not None:
        stats[status] += 1
        msg = "Service Unavailable." if status == 503 else "Internal error; unable to process your request."
        code = -1000 if status == 503 else -1001
        return web.json_response({"code": code, "msg": msg}, status=status)
    if not path.startswith("/fapi/"):
        response = await handler(request)
        stats[response.status] += 1
        return response
    limiter = app[LIMITER_KEY]
    weight = request_weight(path, request.query)
    verdict = limiter.check(path, weight, funding=path == "/fapi/v1/fundingRate",
                            ip=request.remote or "127.0.0.1")
    headers = {"X-MBX-USED-WEIGHT-1M": str(verdict.used_weight)}
    if verdict.status != 200:
        stats[verdict.status] += 1
        headers["Retry-After"] = str(verdict.retry_after_s)
        response = error_response(BinanceError(verdict.status, -1003, verdict.msg))
        response.headers.update(headers)
        return response
    try:
        response = await handler(request)
    except BinanceError as err:
        response = error_response(err)
    except web.HTTPException as exc:
        response = exc
    response.headers.update(headers)
    stats[response.status] += 1
    return response


async def _archive_file(request: web.Request) -> web.StreamResponse:
    app = request.app
    archive, faults = app[ARCHIVE_KEY], app[FAULTS_KEY]
    key = request.path.lstrip("/")
    app[STATE_KEY].archive_requests += 1
    f = archive.parse_key(key)
    if f is None or not archive.published(f) or f.key in faults.missing:
        return web.Response(body=no_such_key(key), status=404, content_type="application/xml")
    cached = archive.cached_size(f.key) is not None
    if cached:
        data = archive.zip_bytes(f)
    else:
        data = await asyncio.get_running_loop().run_in_executor(None, archive.zip_bytes, f)
    if f.key in faults.shuffled or f.key in faults.relayout:
        data = rewritten_zip(archive.csv_bytes(f), f.filename, shuffle=f.key in faults.shuffled,
                             extra_column=f.key in faults.relayout)
    if f.key in faults.republished:
        data = rewritten_zip(archive.csv_bytes(f), f.filename, shuffle=False, extra_column=False)
    if f.key in faults.bomb:
        data = await asyncio.get_running_loop().run_in_executor(None, bomb_zip, archive.csv_bytes(f), f.filename)
    if f.key in faults.truncated:
        data = data[: len(data) // 2]
    served = data
    if f.key in faults.corrupt:
        mid = len(data) // 2
        served = data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 16]) + data[mid + 16:]
    modified = {"Last-Modified": http_date(faults.republished.get(f.key) or last_modified(archive.market, f))}
    if key.endswith(".CHECKSUM"):
        app[STATE_KEY].checksum_requests += 1
        return web.Response(body=checksum_text(data, f.filename), headers=modified,
                            content_type="application/octet-stream")
    return web.Response(body=served, headers=modified, content_type="application/zip")


BOMB_BYTES = 1 << 30


@functools.lru_cache(maxsize=4)
def bomb_zip(csv_data: bytes, filename: str) -> bytes:
    """A zip of about 1 MB whose one member inflates to 1 GiB: the day's CSV, then zeros (streamed in)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        info = zipfile.ZipInfo(filename.removesuffix(".zip") + ".csv", date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as member:
            member.write(csv_data)
            zeros = b"0" * (1 << 20)
            for _ in range((BOMB_BYTES - len(csv_data)) // len(zeros)):
                member.write(zeros)
    return buf.getvalue()


def rewritten_zip(csv_data: bytes, filename: str, *, shuffle: bool, extra_column: bool) -> bytes:
    """A defective but checksum-consistent file: rows out of order and partly repeated, or one column more."""
    lines = csv_data.rstrip(b"\n").split(b"\n")
    header = [lines.pop(0)] if lines and not lines[0][:1].isdigit() else []
    if shuffle:
        lines = [line for i, line in enumerate(reversed(lines)) for _ in range(2 if i % 10 == 0 else 1)]
    if extra_column:
        header = [h + b",extra" for h in header]
        lines = [line + b",0" for line in lines]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        # a fixed timestamp: the .CHECKSUM and the zip are separate requests and must hash the same bytes
        info = zipfile.ZipInfo(filename.removesuffix(".zip") + ".csv", date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, b"\n".join(header + lines) + b"\n")
    return buf.getvalue()


async def _listing(request: web.Request) -> web.Response:
    q = request.query
    try:
        max_keys = int(q.get("max-keys", "1000"))
    except ValueError:
        max_keys = 1000
    request.app[STATE_KEY].archive_requests += 1
    request.app[STATE_KEY].listing_requests += 1
    body = request.app[ARCHIVE_KEY].listing_xml(q.get("prefix", ""), q.get("delimiter", ""), q.get("marker", ""),
                                                 max_keys, modified=request.app[FAULTS_KEY].republished)
    return web.Response(body=body, content_type="application/xml")


def build_app(market: SimMarket, config: SimConfig | None = None) -> web.Application:
    """The simulator app: /fapi/v1/*, /data/futures/um/*, /data.binance.vision (listing), /_sim/* and WS."""
    config = config or SimConfig()
    app = web.Application(middlewares=[_sim_middleware])
    app[MARKET_KEY] = market
    app[ARCHIVE_KEY] = Archive(market, config.archive_cache_bytes)
    faults = Faults()
    faults.update(config.faults)
    app[FAULTS_KEY] = faults
    if config.rate_clock not in ("wall", "market"):
        raise ValueError(f"rate_clock={config.rate_clock!r}: expected 'wall' or 'market'")
    limits = config.limit_config()
    limiter = RateLimiter(limits) if config.rate_clock == "wall" else RateLimiter(limits, lambda: market.now_ms)
    app[LIMITER_KEY] = limiter
    app[STATE_KEY] = SimState(config, limits)
    add_rest_routes(app)
    app.router.add_get("/data.binance.vision", _listing)
    app.router.add_get("/data/{tail:.*}", _archive_file)
    add_control_routes(app)
    try:
        ws = importlib.import_module("marketdata_sim.ws")
    except ModuleNotFoundError as exc:
        if exc.name != "marketdata_sim.ws":
            raise
    else:
        ws.add_ws_routes(app, market)

    async def _release_hangs(app: web.Application) -> None:
        app[STATE_KEY].release.set()

    app.on_shutdown.append(_release_hangs)
    return app


def stats_of(app: web.Application) -> dict:
    out = app[LIMITER_KEY].stats()
    state = app[STATE_KEY]
    out["status_counts"] = {str(k): v for k, v in state.status_counts.items()}
    out["archive_requests"] = state.archive_requests
    out["archive_listing_requests"] = state.listing_requests
    out["archive_checksum_requests"] = state.checksum_requests
    out["now_ms"] = app[MARKET_KEY].now_ms
    return out


def env_lines(url: str) -> list[str]:
    """The environment that points the project at a simulator at `url`."""
    ws = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return [f"BINANCE_FAPI_URL={url}", f"BINANCE_ARCHIVE_URL={url}",
            f"BINANCE_ARCHIVE_LISTING_URL={url}/data.binance.vision", f"BINANCE_WS_URL={ws}"]


def _split_options(options: dict) -> tuple[dict, dict]:
    market_keys = {"seed", "outages", "now", "symbols", "day_cache_size"}
    return ({k: v for k, v in options.items() if k in market_keys},
            {k: v for k, v in options.items() if k not in market_keys})


class SimServer:
    """The simulator in a background thread with its own event loop; a context manager.

    Options: the SimMarket ones (now, seed, outages, symbols) and the SimConfig ones (weight_limit,
    window_ms, ban_after, ban_ms, funding_limit, rate_clock, faults, archive_cache_bytes).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, market: SimMarket | None = None,
                 **options: object) -> None:
        market_opts, config_opts = _split_options(options)
        market_opts.setdefault("outages", DEFAULT_OUTAGES)
        self.market = market or SimMarket(**market_opts)  # type: ignore[arg-type]
        self.config = SimConfig.from_kwargs(**config_opts)
        self.host, self.port = host, port
        self.app: web.Application | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in env_lines(self.url))

    def start(self) -> SimServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_app())
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"marketdata-sim-{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return self

    async def _start_app(self) -> None:
        self.app = build_app(self.market, self.config)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- test helpers (thread-safe enough: plain attribute updates under the GIL) -------------
    def stats(self) -> dict:
        return stats_of(self.app)

    def set_faults(self, **spec: object) -> None:
        """e.g. set_faults(error_burst={"count": 2, "status": 503}), set_faults(clear=True)."""
        self.app[FAULTS_KEY].update(spec, self.market.now_ms)

    def set_now(self, now: int | str | None) -> None:
        self.market.set_now(now)

    def set_limits(self, **limits: int) -> None:
        cfg = self.app[LIMITER_KEY].config
        for name, value in limits.items():
            if not hasattr(cfg, name):
                raise TypeError(f"unknown limit {name!r}")
            setattr(cfg, name, int(value))

    def reset(self) -> None:
        """Counters, bans and faults back to the start (the clock stays)."""
        self.app[LIMITER_KEY].reset()
        self.app[STATE_KEY].status_counts.clear()
        self.app[STATE_KEY].archive_requests = 0
        self.app[STATE_KEY].listing_requests = self.app[STATE_KEY].checksum_requests = 0
        self.app[FAULTS_KEY].update({"clear": True})


def serve(port: int = 8765, host: str = "127.0.0.1", **options: object) -> None:
    """Run the simulator in the foreground until interrupted (the `marketdata sim` command)."""
    market_opts, config_opts = _split_options(options)
    market = SimMarket(**market_opts)  # type: ignore[arg-type]
    app = build_app(market, SimConfig.from_kwargs(**config_opts))
    url = f"http://{host}:{port}"
    print("marketdata simulator (local Binance USD-M) listening; point the project at it with:", flush=True)
    for line in env_lines(url):
        print(f"export {line}", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
