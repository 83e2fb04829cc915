"""The simulator's WebSocket market streams (SPEC B): routes, live (un)subscribe, limits, faults.

`add_ws_routes(app, market)` serves, on the REST port:
- `/market/stream?streams=a/b`, `/public/stream?streams=...` (combined: {"stream":..., "data":...})
- `/market/ws/<s>[/<s>...]`, `/public/ws/<s>...` (raw payloads)
- legacy `/stream?streams=...` and `/ws/<s>...` with /public semantics: market streams there are ACKed
  and silent, as Binance does since the 2026 route split (SPEC B.1).

One hub task per app drives everything on the server's event loop: it (optionally) advances the market
clock, lets each channel produce the payloads due (encoded once), frames them once per form (raw or
combined) and writes each connection's frames with a single transport write per tick. That batching is
what lets one Python process push well over 50,000 messages/s. Control and fault switches are under
`/_sim/ws/...` (see `add_ws_routes`) and on the `WsHub` object (`app[WS_HUB_KEY]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import struct
import time
from collections import deque
from dataclasses import asdict, dataclass, fields

import orjson
from aiohttp import WSMsgType, web

from marketdata_sim.market import SimMarket
from marketdata_sim.timegrid import parse_time
from marketdata_sim.ws_feed import BookCache, Channel, make_channel
from marketdata_sim.ws_streams import InvalidStreamError, StreamName, parse_stream, route_delivers

log = logging.getLogger(__name__)

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
INVALID_STREAM = {"code": 2, "msg": "Invalid request: invalid stream"}
BAD_ID = {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
DEFAULT_MALFORMED = b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":17'


@dataclass
class WsConfig:
    """Connection rules (SPEC B.2); tests shorten them through POST /_sim/ws/config."""

    ping_interval_s: float = 180.0
    pong_timeout_s: float = 600.0
    max_incoming_per_s: int = 10
    max_streams: int = 1024
    lifetime_s: float = 86_400.0
    tick_s: float = 0.05  # how often the hub produces and flushes (wall seconds)
    write_high_water: int = 8 << 20  # bytes buffered in the socket before a connection's frames wait
    max_pending_frames: int = 200_000  # frames queued behind a full socket before the consumer is dropped

    def update(self, values: dict) -> None:
        known = {f.name: f.type for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown WebSocket setting {key!r}: expected one of {sorted(known)}")
            cast = float if known[key] in (float, "float") else int
            setattr(self, key, cast(value))


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server frame (RFC 6455 5.2)."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


class Conn:
    """One client connection and its subscriptions."""

    def __init__(self, cid: int, ws: web.WebSocketResponse, request: web.Request, route: str,
                 combined: bool) -> None:
        self.id = cid
        self.ws = ws
        self.transport = request.transport
        self.route = route
        self.path = request.path
        self.combined = combined
        self.subs: dict[str, StreamName] = {}
        self.opened = time.monotonic()
        self.incoming: deque[float] = deque()
        self.stalled = False
        self.pending: list[bytes] = []
        self.ping_payload: bytes | None = None
        self.ping_sent = 0.0
        self.last_ping = self.opened
        self.sent = 0
        self.closing = False
        self.ready = False  # the upgrade response is written

    def describe(self) -> dict:
        return {"id": self.id, "path": self.path, "route": self.route, "combined": self.combined,
                "streams": list(self.subs), "age_s": round(time.monotonic() - self.opened, 3),
                "stalled": self.stalled, "sent": self.sent}


class WsHub:
    """All connections and channels of one simulator app."""

    def __init__(self, market: SimMarket, config: WsConfig | None = None) -> None:
        self.market = market
        self.config = config or WsConfig()
        self.conns: dict[int, Conn] = {}
        self.channels: dict[str, Channel] = {}
        self.books = BookCache(market)
        self._ids = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._clock: tuple[int, float, float] | None = None  # (anchor ms, wall start, speed)
        self._last_wall = time.monotonic()
        self._rates: dict[str, float] = {}
        self._closers: set[asyncio.Task] = set()

    # ----- life cycle --------------------------------------------------------------------------
    async def start(self, _app: web.Application | None = None) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def shutdown(self, _app: web.Application | None = None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for conn in list(self.conns.values()):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"server shutdown")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            try:
                self.tick()
            except Exception:  # a bug in one tick must not end every stream
                log.exception("ws hub tick failed")

    # ----- clock -------------------------------------------------------------------------------
    def drive_clock(self, speed: float | None, anchor: int | str | None = None) -> None:
        """Run the market clock as anchor + (wall - start) * speed (None: stop, leave it frozen there).

        Why here: SimMarket's clock is real or frozen; tests freeze it, and streams need time to pass.
        The hub moves the frozen clock with `market.set_now` every tick, so REST sees the same time."""
        if speed is None:
            self._clock = None
            return
        start = self.market.now_ms if anchor is None else parse_time(anchor)
        self._clock = (int(start), time.monotonic(), float(speed))
        self.market.set_now(int(start))

    def _clock_now(self, wall: float) -> int:
        if self._clock is not None:
            anchor, start, speed = self._clock
            self.market.set_now(anchor + int((wall - start) * 1000 * speed))
        return self.market.now_ms

    # ----- subscriptions -----------------------------------------------------------------------
    def _channel(self, stream: StreamName, now: int) -> Channel:
        ch = self.channels.get(stream.name)
        if ch is None:
            ch = self.channels[stream.name] = make_channel(stream, self.market, self.books, now)
            ch.rate = self._rates.get(stream.name, self._rates.get("*", 0.0))
        return ch

    def subscribe(self, conn: Conn, streams: list[StreamName]) -> None:
        now = self.market.now_ms
        for s in streams:
            if s.name in conn.subs:
                continue
            conn.subs[s.name] = s
            if route_delivers(conn.route, s):
                self._channel(s, now).subs.add(conn)

    def unsubscribe(self, conn: Conn, streams: list[StreamName]) -> None:
        for s in streams:
            conn.subs.pop(s.name, None)
            ch = self.channels.get(s.name)
            if ch is not None:
                ch.subs.discard(conn)
                if not ch.subs:
                    del self.channels[s.name]

    def _forget(self, conn: Conn) -> None:
        self.unsubscribe(conn, list(conn.subs.values()))
        self.conns.pop(conn.id, None)

    # ----- the tick ----------------------------------------------------------------------------
    def tick(self) -> None:
        """Produce what is due on every channel, frame it once, flush every connection."""
        wall = time.monotonic()
        dt = max(wall - self._last_wall, 0.0)
        self._last_wall = wall
        now = self._clock_now(wall)
        for ch in list(self.channels.values()):
            if not ch.subs:
                continue
            payloads = ch.synthetic(now, dt) if ch.rate > 0 else ch.produce(now)
            if payloads:
                self._fan_out(ch, payloads)
        for conn in list(self.conns.values()):
            self._housekeep(conn, wall)
            self._flush(conn)

    def _fan_out(self, ch: Channel, payloads: list[bytes]) -> None:
        raw: list[bytes] | None = None
        combined: list[bytes] | None = None
        for conn in ch.subs:
            if conn.stalled or conn.closing:
                continue
            if conn.combined:
                if combined is None:
                    pre = ch.prefix
                    combined = [_frame(pre + p + b"}") for p in payloads]
                conn.pending.extend(combined)
            else:
                if raw is None:
                    raw = [_frame(p) for p in payloads]
                conn.pending.extend(raw)

    def _flush(self, conn: Conn) -> None:
        if not conn.pending or conn.closing or not conn.ready:
            return
        transport = conn.transport
        if transport is None or transport.is_closing():
            conn.pending.clear()
            return
        if transport.get_write_buffer_size() > self.config.write_high_water:
            if len(conn.pending) > self.config.max_pending_frames:
                log.warning("ws conn %s: slow consumer, dropping the connection", conn.id)
                conn.pending.clear()
                transport.abort()
            return
        transport.write(b"".join(conn.pending))
        conn.sent += len(conn.pending)
        conn.pending.clear()

    def _housekeep(self, conn: Conn, wall: float) -> None:
        if conn.closing or not conn.ready:
            return
        cfg = self.config
        if wall - conn.opened >= cfg.lifetime_s:
            self._close(conn, 1001, b"connection lifetime reached")
            return
        if conn.ping_payload is not None and wall - conn.ping_sent >= cfg.pong_timeout_s:
            self._close(conn, 1008, b"pong timeout")
            return
        if not conn.stalled and wall - conn.last_ping >= cfg.ping_interval_s:
            conn.last_ping = wall
            payload = str(int(time.time() * 1000)).encode()
            if conn.ping_payload is None:
                conn.ping_payload, conn.ping_sent = payload, wall
            conn.pending.append(_frame(conn.ping_payload if conn.ping_payload else payload, 0x9))

    def _close(self, conn: Conn, code: int, message: bytes) -> None:
        conn.closing = True
        conn.pending.clear()
        task = asyncio.get_running_loop().create_task(conn.ws.close(code=code, message=message))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    # ----- faults ------------------------------------------------------------------------------
    def select(self, conn_id: int | None = None, stream: str | None = None) -> list[Conn]:
        conns = [c for c in self.conns.values() if not c.closing]
        if conn_id is not None:
            conns = [c for c in conns if c.id == conn_id]
        if stream is not None:
            conns = [c for c in conns if stream in c.subs]
        return conns

    def drop(self, conn_id: int | None = None, stream: str | None = None) -> int:
        """Close abruptly (TCP abort, no close frame): what a network failure looks like."""
        conns = self.select(conn_id, stream)
        for c in conns:
            c.closing = True
            if c.transport is not None:
                c.transport.abort()
        return len(conns)

    def stall(self, on: bool = True, conn_id: int | None = None, stream: str | None = None) -> int:
        """Keep the connection open but send nothing at all (no data, pings or pongs)."""
        conns = self.select(conn_id, stream)
        for c in conns:
            c.stalled = on
            if on:
                c.pending.clear()
        return len(conns)

    def send_malformed(self, frame: bytes = DEFAULT_MALFORMED, conn_id: int | None = None,
                       stream: str | None = None) -> int:
        conns = self.select(conn_id, stream)
        for c in conns:
            c.pending.append(_frame(frame))
            self._flush(c)
        return len(conns)

    def break_depth(self, symbol: str, mode: str = "skip") -> int:
        """The next depth event of `symbol` on every depth stream is dropped ("skip") or carries a
        wrong `pu` ("perturb"): a client must notice the broken chain and resync that symbol."""
        if mode not in ("skip", "perturb"):
            raise ValueError(f"unknown depth break mode {mode!r}: expected 'skip' or 'perturb'")
        chans = [c for c in self.channels.values()
                 if c.stream.symbol == symbol and c.stream.kind in ("depth", "partialDepth")]
        for c in chans:
            c.break_mode = mode
        return len(chans)

    def burst(self, count: int, conn_id: int | None = None, stream: str | None = None) -> int:
        """`count` copies of each selected stream's latest payload at once (depth streams excluded:
        a repeated diff would break the chain, which is what `break_depth` is for)."""
        sent = 0
        for c in self.select(conn_id, stream):
            for name in ([stream] if stream else list(c.subs)):
                ch = self.channels.get(name)
                if ch is None or ch.last_payload is None or c not in ch.subs:
                    continue
                if ch.stream.kind in ("depth", "partialDepth"):
                    continue
                body = ch.prefix + ch.last_payload + b"}" if c.combined else ch.last_payload
                c.pending.extend([_frame(body)] * count)
                sent += count
            self._flush(c)
        return sent

    def set_rate(self, stream: str, rate: float) -> None:
        """Synthetic messages/s for a stream name ("*": every stream); 0 returns to market data."""
        self._rates[stream] = float(rate)
        for name, ch in self.channels.items():
            if stream in ("*", name):
                ch.rate = float(rate)

    # ----- connections -------------------------------------------------------------------------
    async def handle(self, request: web.Request, route: str, combined: bool, names: list[str]) -> web.StreamResponse:
        try:
            streams = [parse_stream(n) for n in names]
        except InvalidStreamError:
            return web.json_response(INVALID_STREAM, status=400)
        if len(streams) > self.config.max_streams:
            return web.json_response({"code": 2, "msg": "Invalid request: too many parameters"}, status=400)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        conn = Conn(next(self._ids), ws, request, route, combined)
        # Subscribed before the handshake answer: once the client is connected, its streams run from
        # that market instant on (frames wait in `pending` until the upgrade is written).
        self.conns[conn.id] = conn
        self.subscribe(conn, streams)
        try:
            await ws.prepare(request)
            conn.ready = True
            async for msg in ws:
                if conn.closing:
                    break
                if not self._admit(conn):
                    await ws.close(code=1008, message=b"too many messages")
                    break
                if msg.type == WSMsgType.TEXT:
                    reply, close = self.on_text(conn, msg.data)
                    if reply is not None and not conn.stalled:
                        await ws.send_str(reply.decode())
                    if close:
                        await ws.close(code=1003, message=b"invalid JSON")
                        break
                elif msg.type == WSMsgType.BINARY:
                    await ws.close(code=1003, message=b"binary frames are not supported")
                    break
                elif msg.type == WSMsgType.PING:
                    if not conn.stalled:
                        await ws.pong(msg.data)
                elif (msg.type == WSMsgType.PONG and conn.ping_payload is not None
                      and msg.data == conn.ping_payload):
                    conn.ping_payload = None
        finally:
            self._forget(conn)
        return ws

    def _admit(self, conn: Conn) -> bool:
        """At most `max_incoming_per_s` incoming messages in any second (SPEC B.2)."""
        t = time.monotonic()
        q = conn.incoming
        while q and t - q[0] >= 1.0:
            q.popleft()
        if len(q) >= self.config.max_incoming_per_s:
            return False
        q.append(t)
        return True

    def on_text(self, conn: Conn, text: str) -> tuple[bytes | None, bool]:
        """One client request -> (reply, close?) exactly as SPEC B.3 describes."""
        try:
            req = json.loads(text)
        except json.JSONDecodeError as exc:
            err = {"code": 3, "msg": f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}"}
            return orjson.dumps({"error": err}), True
        if not isinstance(req, dict):
            return _error({"code": 2, "msg": "Invalid request: expected a JSON object"}, None), False
        rid = req.get("id")
        if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid < 2**64:
            return _error(BAD_ID, None), False
        if "method" not in req:
            return _error({"code": 2, "msg": f"Invalid request: missing field `method` at line 1 column {len(text)}"},
                          rid), False
        method = req["method"]
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            return _error({"code": 2, "msg": f"Invalid request: unknown variant `{method}`, expected one of "
                                             f"{expected}"}, rid), False
        params = req.get("params", [])
        if not isinstance(params, list):
            return _error({"code": 2, "msg": "Invalid request: invalid type: expected a sequence"}, rid), False
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            try:
                streams = [parse_stream(p) for p in params]
            except InvalidStreamError:
                return _error(INVALID_STREAM, rid), False
            if method == "SUBSCRIBE":
                new = {s.name for s in streams} - set(conn.subs)
                if len(conn.subs) + len(new) > self.config.max_streams:
                    return _error({"code": 2, "msg": "Invalid request: too many parameters"}, rid), False
                self.subscribe(conn, streams)
            else:
                self.unsubscribe(conn, streams)
            return orjson.dumps({"result": None, "id": rid}), False
        if method == "LIST_SUBSCRIPTIONS":
            return orjson.dumps({"result": list(conn.subs), "id": rid}), False
        if not params or params[0] != "combined":
            return _error({"code": 0, "msg": "Unknown property"}, rid), False
        if method == "GET_PROPERTY":
            return orjson.dumps({"result": conn.combined, "id": rid}), False
        if len(params) != 2 or not isinstance(params[1], bool):
            return _error({"code": 1, "msg": "Invalid value type: expected Boolean"}, rid), False
        conn.combined = params[1]
        return orjson.dumps({"result": None, "id": rid}), False

    def describe(self) -> dict:
        return {"config": asdict(self.config), "connections": [c.describe() for c in self.conns.values()],
                "channels": {n: len(c.subs) for n, c in self.channels.items()},
                "clock": None if self._clock is None else {"anchor": self._clock[0], "speed": self._clock[2]},
                "rates": self._rates}


def _error(err: dict, rid: int | None) -> bytes:
    return orjson.dumps({"error": err, "id": rid})


WS_HUB_KEY = web.AppKey("ws_hub", WsHub)


def add_ws_routes(app: web.Application, market: SimMarket, config: WsConfig | None = None) -> None:
    """Serve the market streams and their control API on `app` (see the module doc).

    Control API (POST, JSON body; every answer is {"result": ...}; `conn` / `stream` select connections):
    - /_sim/ws/state                      connections, channels, clock, rates, config
    - /_sim/ws/config   {"lifetime_s": 2, "ping_interval_s": 1, "pong_timeout_s": 3, "max_streams": ...}
    - /_sim/ws/clock    {"speed": 60, "anchor": "2024-03-01T12:00:00Z"}  (anchor default: now;
                        {"speed": null} stops and leaves the clock frozen where it is)
    - /_sim/ws/drop     {"conn": 3} | {"stream": "btcusdt@aggTrade"} | {}   TCP abort, no close frame
    - /_sim/ws/stall    {"on": true, ...}    open but silent (no data, pings or pongs) until "on": false
    - /_sim/ws/malformed {"frame": "..."}    one broken text frame
    - /_sim/ws/break_depth {"symbol": "BTCUSDT", "mode": "skip" | "perturb"}
    - /_sim/ws/burst    {"count": 1000, ...} the latest payload of each selected stream, `count` times at once
    - /_sim/ws/rate     {"stream": "btcusdt@aggTrade" | "*", "rate": 20000}  synthetic messages/s (0: off)
    """
    hub = WsHub(market, config)
    app[WS_HUB_KEY] = hub
    app.on_startup.append(hub.start)
    app.on_shutdown.append(hub.shutdown)
    r = app.router

    def combined_route(route: str):
        async def handler(request: web.Request) -> web.StreamResponse:
            raw = request.query.get("streams", "")
            return await hub.handle(request, route, True, raw.split("/") if raw else [])
        return handler

    def raw_route(route: str):
        async def handler(request: web.Request) -> web.StreamResponse:
            raw = request.match_info.get("streams", "")
            return await hub.handle(request, route, False, raw.split("/") if raw else [])
        return handler

    for prefix, route in (("/market", "market"), ("/public", "public"), ("", "legacy")):
        r.add_get(f"{prefix}/stream", combined_route(route))
        r.add_get(f"{prefix}/ws", raw_route(route))
        r.add_get(f"{prefix}/ws/{{streams:.+}}", raw_route(route))

    async def control(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body = await request.json() if request.can_read_body else {}
        conn_id, stream = body.get("conn"), body.get("stream")
        try:
            if action == "state":
                result: object = hub.describe()
            elif action == "config":
                hub.config.update(body)
                result = asdict(hub.config)
            elif action == "clock":
                hub.drive_clock(body.get("speed"), body.get("anchor"))
                result = {"now": market.now_ms}
            elif action == "drop":
                result = hub.drop(conn_id, stream)
            elif action == "stall":
                result = hub.stall(bool(body.get("on", True)), conn_id, stream)
            elif action == "malformed":
                frame = body.get("frame")
                result = hub.send_malformed(frame.encode() if frame else DEFAULT_MALFORMED, conn_id, stream)
            elif action == "break_depth":
                result = hub.break_depth(str(body["symbol"]).upper(), body.get("mode", "skip"))
            elif action == "burst":
                result = hub.burst(int(body.get("count", 100)), conn_id, stream)
            elif action == "rate":
                hub.set_rate(str(body.get("stream", "*")), float(body.get("rate", 0)))
                result = hub.describe()["rates"]
            else:
                return web.json_response({"error": f"unknown action {action!r}"}, status=404)
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"bad {action} request: {exc}"}, status=400)
        return web.json_response({"result": result})

    r.add_route("*", "/_sim/ws/{action}", control)
