"""One combined-stream WebSocket connection that stays up: reconnect, silence detection, rotation.

Why each piece:
- Reconnect with exponential backoff and full jitter, the first retry after 25-50 ms: a dropped
  connection costs data every 100 ms, and jitter keeps many sidecars from reconnecting in lockstep.
- Silence detection: Binance can keep a socket open and send nothing (SPEC B.3: ACKed but silent);
  TCP keepalive and pings do not see that. A connection is declared stalled when it has been silent
  longer than the tightest normal silence of its streams (streams.SilencePolicy).
- Rotation before the 24 h cap: the replacement is opened first and both deliver for an overlap; the
  handler drops what it has already seen (ids / event times), so nothing is lost at the switch.
- Subscriptions are in the URL (and SUBSCRIBE for those that do not fit), so every reconnect restores
  them; live changes go through SUBSCRIBE/UNSUBSCRIBE, paced under Binance's 10 messages/s limit.
- Every down window (last message before the drop -> first message after it) is reported to
  `on_down`/`on_up`, which record it and fill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streaming.streams import SilencePolicy, StreamSpec, combined_url, connection_silence_limit
from streaming.ws_client import CONNECT_ERRORS, WsClient, WsClosed

log = logging.getLogger(__name__)

MAX_URL_STREAMS_CHARS = 6000   # longer stream lists go through SUBSCRIBE after connecting
SUBSCRIBE_CHUNK = 200          # params per SUBSCRIBE message
CONTROL_MESSAGES_PER_S = 5.0   # Binance drops a connection above 10 incoming messages/s
MAX_QUEUED_FRAMES = 1024       # frames received and not yet handled; beyond it reading pauses (backpressure)

FrameHandler = Callable[[bytes, "StreamConnection"], Awaitable[None]]


@dataclass
class Backoff:
    """Exponential backoff with jitter; `reset()` once a connection proved stable."""

    base: float = 0.05
    factor: float = 2.0
    cap: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * self.factor ** self.attempt)
        self.attempt += 1
        return delay * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class DownWindow:
    """An interval during which this connection delivered nothing (ms, exchange clock)."""

    start_ms: int
    reason: str
    end_ms: int | None = None


def now_ms() -> int:
    return int(time.time() * 1000)


class StreamConnection:
    """Keeps one route's combined-stream connection alive; frames go to `handler` as bytes."""

    _ids = itertools.count(1)

    def __init__(self, ws_url: str, route: str, specs: Iterable[StreamSpec], handler: FrameHandler, *,
                 policy: SilencePolicy | None = None, lifetime: float = 23.5 * 3600, overlap: float = 2.0,
                 backoff: Backoff | None = None, stable_after: float = 10.0,
                 on_down: Callable[[StreamConnection, DownWindow], None] | None = None,
                 on_up: Callable[[StreamConnection, DownWindow], None] | None = None,
                 on_reconnect: Callable[[str], None] | None = None,
                 on_rotate: Callable[[], None] | None = None,
                 open_timeout: float = 10.0, ping_interval: float | None = 20.0) -> None:
        self.id = next(self._ids)
        self.ws_url = ws_url
        self.route = route
        self.specs: dict[str, StreamSpec] = {s.name: s for s in specs}
        self.handler = handler
        self.policy = policy or SilencePolicy()
        self.lifetime = lifetime
        self.overlap = overlap
        self.backoff = backoff or Backoff()
        self.stable_after = stable_after
        self.on_down = on_down
        self.on_up = on_up
        self.on_reconnect = on_reconnect
        self.on_rotate = on_rotate
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.state = "new"
        self.reconnects = 0
        self.rotations = 0
        self.messages = 0
        self.last_message_ms: int | None = None  # wall clock
        self.last_event_ms: int | None = None    # exchange clock (`E` of the last event), set by the handler
        self._last_message_mono = time.monotonic()
        self._opened_mono = time.monotonic()
        self.down: DownWindow | None = None
        self.down_windows: list[DownWindow] = []
        self._ws: WsClient | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._control_ids = itertools.count(1)
        self._control_sent: list[float] = []
        self._pending_controls: dict[int, asyncio.Future] = {}
        self._busy = False
        self._kick: str | None = None  # reason to drop the current socket (set by the watchdog or tests)

    # ------------------------------------------------------------------ public

    def start(self) -> asyncio.Task:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ws-{self.route}-{self.id}")
        return self._task

    async def stop(self) -> None:
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)
        self.state = "closed"

    def drop(self, reason: str = "forced") -> None:
        """Abort the current socket (as a network failure would); the connection reconnects."""
        self._kick = reason
        ws = self._ws
        if ws is not None:
            ws.abort()

    def rotate_now(self) -> None:
        """Rotate at the next watchdog tick instead of at the lifetime cap."""
        self._opened_mono = time.monotonic() - self.lifetime

    @property
    def stream_names(self) -> list[str]:
        return list(self.specs)

    def silence_limit(self) -> float:
        return connection_silence_limit(list(self.specs.values()), self.policy) if self.specs else 3600.0

    def describe(self) -> dict[str, Any]:
        age = None if self.last_message_ms is None else round(time.monotonic() - self._last_message_mono, 3)
        return {
            "id": self.id, "route": self.route, "state": self.state, "streams": len(self.specs),
            "stream_names": self.stream_names[:50], "last_message_age_s": age, "messages": self.messages,
            "reconnects": self.reconnects, "rotations": self.rotations,
            "connected_for_s": round(time.monotonic() - self._opened_mono, 1) if self.state == "open" else None,
            "down_windows": len(self.down_windows),
        }

    async def subscribe(self, specs: Iterable[StreamSpec]) -> None:
        """Add streams live (SUBSCRIBE); they are also in the URL of every later reconnect."""
        new = [s for s in specs if s.name not in self.specs]
        for spec in new:
            self.specs[spec.name] = spec
        if new and self._ws is not None and self.state == "open":
            await self._send_control("SUBSCRIBE", [s.name for s in new])

    async def unsubscribe(self, names: Iterable[str]) -> None:
        gone = [n for n in names if n in self.specs]
        for name in gone:
            del self.specs[name]
        if gone and self._ws is not None and self.state == "open":
            await self._send_control("UNSUBSCRIBE", gone)

    # ------------------------------------------------------------------ control messages

    async def _pace(self) -> None:
        # At most CONTROL_MESSAGES_PER_S control messages in any second (Binance allows 10).
        while True:
            now = time.monotonic()
            self._control_sent = [t for t in self._control_sent if now - t < 1.0]
            if len(self._control_sent) < CONTROL_MESSAGES_PER_S:
                self._control_sent.append(now)
                return
            await asyncio.sleep(1.0 - (now - self._control_sent[0]))

    async def _send_control(self, method: str, params: list[str], ws: WsClient | None = None) -> None:
        target = ws or self._ws
        if target is None:
            return
        for start in range(0, len(params), SUBSCRIBE_CHUNK):
            await self._pace()
            ident = next(self._control_ids)
            message = {"method": method, "params": params[start:start + SUBSCRIBE_CHUNK], "id": ident}
            await target.send(orjson.dumps(message).decode())

    def on_control(self, reply: Any) -> None:
        """A control reply arrived (ack or error); errors are logged, the stream goes on."""
        if getattr(reply, "error", None) or getattr(reply, "code", None):
            log.warning("connection %s %s: server error reply %s", self.id, self.route, reply)

    # ------------------------------------------------------------------ connect / read

    def _url_and_rest(self) -> tuple[str, list[str]]:
        names = self.stream_names
        in_url: list[str] = []
        length = 0
        for name in names:
            if in_url and length + len(name) + 1 > MAX_URL_STREAMS_CHARS:
                break
            in_url.append(name)
            length += len(name) + 1
        return combined_url(self.ws_url, self.route, in_url), names[len(in_url):]

    async def _open(self) -> WsClient:
        url, rest = self._url_and_rest()
        ws = await WsClient.open(url, open_timeout=self.open_timeout, ping_interval=self.ping_interval,
                                 max_size=2 ** 23, max_queue=MAX_QUEUED_FRAMES)
        if rest:
            await self._send_control("SUBSCRIBE", rest, ws)
        return ws

    async def _read(self, ws: WsClient, first: asyncio.Event) -> str:
        """Deliver frames until the socket ends; returns why it ended."""
        try:
            while True:
                frame = await ws.recv()
                self._last_message_mono = time.monotonic()
                self.last_message_ms = now_ms()
                self.messages += 1
                if not first.is_set():
                    first.set()
                seen = self.last_event_ms
                self._busy = True  # waiting on backpressure is not silence
                try:
                    await self.handler(frame, self)
                finally:
                    self._busy = False
                    self._last_message_mono = time.monotonic()
                if self.down is not None and (self.last_event_ms != seen or self.last_event_ms is None):
                    self._close_down_window()
        except WsClosed as exc:
            return str(exc)

    def _close_down_window(self) -> None:
        window = self.down
        assert window is not None
        window.end_ms = self.last_event_ms if self.last_event_ms is not None else self.last_message_ms
        self.down = None
        if self.on_up is not None:
            self.on_up(self, window)

    def _open_down_window(self, reason: str) -> None:
        if self.down is not None:
            return  # still down from before: one window until data flows again
        # Exchange time of the last event before the drop (the handler sets `last_event_ms`): fills ask
        # REST for the exchange's bars and trades, so the window must be on the exchange's clock.
        start = self.last_event_ms if self.last_event_ms is not None else (self.last_message_ms or now_ms())
        self.down = DownWindow(start, reason)
        self.down_windows.append(self.down)
        if self.on_down is not None:
            self.on_down(self, self.down)

    async def _run(self) -> None:
        first_connect = True
        while not self._stopping.is_set():
            self.state = "connecting"
            try:
                ws = await self._open()
            except (*CONNECT_ERRORS, WsClosed) as exc:
                self.state = "backoff"
                if not first_connect:
                    self._open_down_window("reconnect failed")
                delay = self.backoff.next_delay()
                log.warning("connection %s %s: connect failed (%s); retry in %.2f s", self.id, self.route,
                            exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                continue
            if not first_connect:
                self.reconnects += 1
            first_connect = False
            reason = await self._serve(ws)
            if self._stopping.is_set():
                break
            self._open_down_window(reason)
            if self.on_reconnect is not None:
                self.on_reconnect(reason.split(" ")[0])
            if time.monotonic() - self._opened_mono >= self.stable_after:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            log.warning("connection %s %s lost (%s); reconnecting in %.3f s", self.id, self.route, reason, delay)
            self.state = "backoff"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        self.state = "closed"

    async def _serve(self, ws: WsClient) -> str:
        """Read `ws` (and its replacement after a rotation) until it is lost; returns why."""
        self._ws = ws
        self.state = "open"
        self._opened_mono = time.monotonic()
        self._last_message_mono = time.monotonic()
        self._kick = None
        first = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, first))
        try:
            while True:
                limit = self.silence_limit()
                tick = max(0.01, min(limit / 4, 1.0))
                done, _ = await asyncio.wait({reader}, timeout=tick)
                if reader in done:
                    return self._kick or reader.result()
                if self._stopping.is_set():
                    return "stopped"
                if not self._busy and time.monotonic() - self._last_message_mono > limit:
                    self._kick = f"silence>{limit:g}s"
                    ws.abort()
                    await asyncio.wait({reader})
                    return self._kick
                if time.monotonic() - self._opened_mono >= self.lifetime:
                    swapped = await self._rotate(ws, reader)
                    if swapped is not None:
                        ws, reader, first = swapped
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
            with contextlib.suppress(Exception):
                ws.abort()

    async def _rotate(self, old: WsClient, old_reader: asyncio.Task
                      ) -> tuple[WsClient, asyncio.Task, asyncio.Event] | None:
        """Open the replacement first, let both deliver for `overlap` s, then close the old one."""
        try:
            new = await self._open()
        except (*CONNECT_ERRORS, WsClosed) as exc:
            log.warning("connection %s: rotation could not open a new socket (%s); retry soon", self.id, exc)
            self._opened_mono = time.monotonic() - self.lifetime + min(30.0, self.lifetime / 2)
            return None
        first = asyncio.Event()
        reader = asyncio.create_task(self._read(new, first))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), max(self.silence_limit(), self.overlap))
        if first.is_set():
            await asyncio.sleep(self.overlap)  # both deliver; the handler drops what it has seen
        self._ws = new
        self._opened_mono = time.monotonic()
        self.rotations += 1
        if self.on_rotate is not None:
            self.on_rotate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.close(), 1)
        old_reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await old_reader
        log.info("connection %s %s rotated", self.id, self.route)
        return new, reader, first
