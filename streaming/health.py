"""The sidecar's HTTP face: `/health` (JSON, per connection) and `/metrics` (Prometheus text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from streaming.metrics import Metrics


class HealthServer:
    def __init__(self, describe: Callable[[], dict[str, Any]], metrics: Metrics, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.describe = describe
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _health(self, _request: web.Request) -> web.Response:
        body = self.describe()
        return web.json_response(body, status=200 if body.get("status") == "ok" else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
