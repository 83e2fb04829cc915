"""One WebSocket client connection on picows: the frames as bytes, through an awaitable `recv`.

Why picows and not `websockets`: picows parses frames in C (about 1.1 us of CPU per aggTrade frame here,
against 8-10 us for `websockets`, measured with the simulator in one run), and at tens of thousands of
frames a second that is most of what the sidecar spends. The connection handler (`connection.py`) keeps
its own logic (reconnect, silence, rotation) and sees only this small surface.

Frames arrive in picows' callback and wait in a deque bounded by `max_queue`: when it is full, reading
from the socket pauses (TCP backpressure, as `websockets`' `max_queue` does) and resumes once the reader
has taken half. A fragmented message is joined, bounded by `max_size`. PING frames are answered by picows;
when `ping_interval` is set, picows pings a connection that has been idle that long and drops it when no
PONG comes within the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import picows

# What a failed connect raises: refused or unreachable (OSError), too slow (TimeoutError), or refused by
# the server's handshake (picows.WSError: a non-101 status, a bad upgrade, a malformed URL).
CONNECT_ERRORS = (OSError, TimeoutError, picows.WSError)


class WsClosed(Exception):
    """The connection ended; `code` is the close code the server sent, None when it sent none."""

    def __init__(self, code: int | None) -> None:
        self.code = code
        super().__init__(f"closed ({code if code is not None else 'no close frame'})")


class _Listener(picows.WSListener):
    def __init__(self, max_queue: int, max_size: int) -> None:
        self.frames: deque[bytes] = deque()
        self.max_queue = max_queue
        self.max_size = max_size
        self.paused = False
        self.closed = False
        self.close_code: int | None = None
        self.waiter: asyncio.Future | None = None
        self.transport: picows.WSTransport | None = None
        self._parts: list[bytes] = []
        self._parts_size = 0

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        kind = frame.msg_type
        if kind is picows.WSMsgType.TEXT or kind is picows.WSMsgType.BINARY:
            if frame.fin and not self._parts:
                self._deliver(frame.get_payload_as_bytes())
            else:
                self._fragment(transport, frame)
        elif kind is picows.WSMsgType.CONTINUATION:
            self._fragment(transport, frame)
        elif kind is picows.WSMsgType.CLOSE:
            self.close_code = frame.get_close_code()
            transport.send_close(picows.WSCloseCode.OK)
            transport.disconnect()

    def _fragment(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        self._parts_size += frame.payload_size
        if self._parts_size > self.max_size:
            transport.send_close(picows.WSCloseCode.MESSAGE_TOO_BIG)
            transport.disconnect()
            return
        self._parts.append(frame.get_payload_as_bytes())
        if frame.fin:
            message = b"".join(self._parts)
            self._parts, self._parts_size = [], 0
            self._deliver(message)

    def _deliver(self, message: bytes) -> None:
        self.frames.append(message)
        if len(self.frames) >= self.max_queue and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.underlying_transport.pause_reading()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class WsClient:
    """An open connection: `recv` the next message, `send` text, `close` politely or `abort`."""

    def __init__(self, transport: picows.WSTransport, listener: _Listener) -> None:
        self._transport = transport
        self._listener = listener

    @classmethod
    async def open(cls, url: str, *, open_timeout: float, ping_interval: float | None, max_size: int,
                   max_queue: int) -> WsClient:
        """Connect and complete the handshake within `open_timeout` seconds (CONNECT_ERRORS otherwise)."""
        async with asyncio.timeout(open_timeout):
            transport, listener = await picows.ws_connect(
                lambda: _Listener(max_queue, max_size), url, websocket_handshake_timeout=open_timeout,
                enable_auto_ping=ping_interval is not None, auto_ping_idle_timeout=ping_interval or 20.0,
                auto_ping_reply_timeout=ping_interval or 20.0, max_frame_size=max_size, max_redirects=0,
                logger_name="ws")
        return cls(transport, listener)

    async def recv(self) -> bytes:
        """The next message's payload; WsClosed once the connection has ended and nothing is left."""
        listener = self._listener
        frames = listener.frames
        while not frames:
            if listener.closed:
                raise WsClosed(listener.close_code)
            listener.waiter = asyncio.get_running_loop().create_future()
            await listener.waiter
            listener.waiter = None
        message = frames.popleft()
        if listener.paused and len(frames) <= listener.max_queue // 2:
            listener.paused = False
            if not listener.closed:
                self._transport.underlying_transport.resume_reading()
        return message

    async def send(self, text: str) -> None:
        if self._listener.closed:
            raise WsClosed(self._listener.close_code)
        self._transport.send(picows.WSMsgType.TEXT, text.encode())

    async def close(self) -> None:
        """Send CLOSE and wait (briefly: the caller bounds it) for the server to end the connection."""
        if not self._listener.closed:
            self._transport.send_close(picows.WSCloseCode.OK)
            self._transport.disconnect(graceful=True)
        with contextlib.suppress(Exception):  # an error already ended it: closed all the same
            await self._transport.wait_disconnected()

    def abort(self) -> None:
        """Drop the socket at once, as a network failure would."""
        self._transport.disconnect(graceful=False)
