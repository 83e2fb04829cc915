"""The sidecar's WebSocket client against a real server on loopback (picows' own server, which can send
fragmented messages and hold frames back, which the simulator's server does not do)."""

from __future__ import annotations

import asyncio

import picows
import pytest

from streaming.ws_client import WsClient, WsClosed
from tests.support.streaming import async_test


class _Server(picows.WSListener):
    """Sends what the test asks for as soon as a client connects."""

    script: list[tuple[picows.WSMsgType, bytes, bool]] = []
    close_code: int | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        for kind, payload, fin in self.script:
            transport.send(kind, payload, fin=fin)
        if self.close_code is not None:
            transport.send_close(self.close_code)
            transport.disconnect()


async def _serve(script, close_code=None) -> tuple[asyncio.AbstractServer, str]:
    listener = type("Scripted", (_Server,), {"script": script, "close_code": close_code})
    server = await picows.ws_create_server(lambda _request: listener(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/"


async def _open(url: str, **overrides) -> WsClient:
    options = {"open_timeout": 5, "ping_interval": None, "max_size": 1024, "max_queue": 16} | overrides
    return await WsClient.open(url, **options)


@async_test
async def test_fragments_are_joined_and_the_close_code_follows_the_last_message():
    text, cont = picows.WSMsgType.TEXT, picows.WSMsgType.CONTINUATION
    server, url = await _serve([(text, b'{"a":', False), (cont, b"1", False), (cont, b"}", True),
                                (text, b"after", True)], close_code=picows.WSCloseCode.GOING_AWAY)
    async with server:
        ws = await _open(url)
        assert [await ws.recv(), await ws.recv()] == [b'{"a":1}', b"after"]
        with pytest.raises(WsClosed) as closed:
            await ws.recv()
        assert closed.value.code == 1001 and str(closed.value) == "closed (1001)"


@async_test
async def test_a_fragmented_message_beyond_max_size_ends_the_connection():
    text, cont = picows.WSMsgType.TEXT, picows.WSMsgType.CONTINUATION
    server, url = await _serve([(text, b"x" * 600, False), (cont, b"y" * 600, True)])
    async with server:
        ws = await _open(url, max_size=1000)
        with pytest.raises(WsClosed):
            await asyncio.wait_for(ws.recv(), 10)


@async_test
async def test_an_unread_backlog_pauses_the_socket_and_every_frame_arrives_in_order():
    frames = [(picows.WSMsgType.TEXT, str(i).encode() * 50, True) for i in range(3000)]
    server, url = await _serve(frames)
    async with server:
        ws = await _open(url, max_size=2 ** 20)
        listener = ws._listener
        deadline = asyncio.get_running_loop().time() + 10
        while not listener.paused:  # nobody reads: the backlog fills up to the bound and reading stops
            assert asyncio.get_running_loop().time() < deadline, "reading never paused"
            await asyncio.sleep(0.01)
        assert len(listener.frames) < 3000
        got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(3000)]
        assert got == [payload for _, payload, _ in frames]
        await asyncio.wait_for(ws.close(), 5)


@async_test
async def test_a_refused_handshake_is_a_connect_error():
    async def not_websocket(reader, writer):
        await reader.read(1024)
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_websocket, "127.0.0.1", 0)
    async with server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        with pytest.raises(picows.WSError):
            await _open(url)
