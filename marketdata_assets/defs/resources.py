"""The one Dagster resource: settings, the store and the Binance clients of a run, sensor tick or schedule.

It wraps `ingest.runtime.open_runtime` so that Dagster and `marketdata download` wire things up one way.
Unset fields come from the environment (`Settings.from_env`), so the same definitions serve the laptop
(SQLite, real Binance) and tests (the simulator, a temporary database). The runtime opens lazily: a sensor
tick that never touches the store opens no connection. The store is migrated to head on first use.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from marketdata_assets.settings import Settings


class MarketDataResource(dg.ConfigurableResource):
    """Market-data store and Binance clients; fields override the environment's settings."""

    database_url: str | None = None
    fapi_url: str | None = None
    archive_url: str | None = None
    archive_listing_url: str | None = None

    _stack: ExitStack | None = PrivateAttr(default=None)
    _runtime: Any = PrivateAttr(default=None)

    def settings(self) -> Settings:
        return Settings.from_env(
            database_url=self.database_url,
            fapi_url=self.fapi_url,
            archive_url=self.archive_url,
            archive_listing_url=self.archive_listing_url,
        )

    def runtime(self):  # -> marketdata_assets.ingest.runtime.Runtime
        """Engine (migrated), repository, REST and archive clients; opened once, closed at teardown."""
        if self._runtime is None:
            from marketdata_assets.ingest.runtime import open_runtime

            self._stack = ExitStack()
            self._runtime = self._stack.enter_context(open_runtime(self.settings()))
        return self._runtime

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = None
        self._runtime = None


def store_kind(resource: MarketDataResource) -> str:
    """The Dagster kind naming the market-data store this resource writes ("postgres" or "sqlite"): the
    lineage graph's badges say the store actually configured."""
    from marketdata_assets.storage.engine import normalise_url

    backend = normalise_url(resource.settings().database_url).get_backend_name()
    return "postgres" if backend == "postgresql" else backend
