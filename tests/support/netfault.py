"""A loopback TCP proxy that can freeze: the test's stand-in for a database server that stops answering
(SIGSTOP, a hung host) while its sockets stay open, so no error ever reaches the client by itself.
Frozen, it still accepts connections and reads what clients send, but passes nothing on; thawed, the
held bytes flow again (as a resumed server would answer late)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class FreezableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections clients opened to the proxy
        self._loop = asyncio.new_event_loop()
        self._running: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="freezable-proxy", daemon=True)

    def start(self) -> FreezableProxy:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._running = asyncio.Event()
        self._running.set()
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._running is not None
        self.accepted += 1
        await self._running.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer),
                             return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._running is not None
        try:
            while data := await reader.read(65536):
                await self._running.wait()  # frozen: hold this chunk, and TCP holds the rest
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def freeze(self) -> None:
        self._loop.call_soon_threadsafe(self._running.clear)  # type: ignore[union-attr]

    def thaw(self) -> None:
        self._loop.call_soon_threadsafe(self._running.set)  # type: ignore[union-attr]

    def stop(self) -> None:
        async def shut() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        self.thaw()
        asyncio.run_coroutine_threadsafe(shut(), self._loop)
        self._thread.join(10)


@contextmanager
def freezable_proxy(host: str = "127.0.0.1", port: int = 5432) -> Iterator[FreezableProxy]:
    proxy = FreezableProxy(host, port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
