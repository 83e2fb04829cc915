"""Build the engine, repository and Binance clients from Settings once, and close them together.

Both `marketdata download` and the Dagster resources use this, so a run wires things up one way only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from marketdata_assets.binance.archive import ArchiveClient
from marketdata_assets.binance.exchange_info import SymbolInfo
from marketdata_assets.binance.rest import BinanceRestClient
from marketdata_assets.ingest.klines import KlineLoader
from marketdata_assets.settings import Settings
from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.migrate import upgrade
from marketdata_assets.storage.repository import MarketDataRepository


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    repo: MarketDataRepository
    rest: BinanceRestClient
    archive: ArchiveClient

    def kline_loader(self, interval: str, kind: str = "klines", *, now_ms: Callable[[], int] | None = None,
                     symbols: dict[str, SymbolInfo] | None = None, source: str = "auto") -> KlineLoader:
        """The loader of one interval and kind, on this runtime's engine and clients."""
        return KlineLoader(self.engine, self.rest, self.archive, interval=interval, kind=kind, now_ms=now_ms,
                           symbols=symbols, source=source)


@contextmanager
def open_runtime(settings: Settings, *, migrate: bool = True) -> Iterator[Runtime]:
    """Engine (migrated to head unless told not to), repository and clients; all closed on exit."""
    settings.ensure_sqlite_dir()
    engine = make_engine(settings.database_url)
    rest = BinanceRestClient.from_settings(settings)
    archive = ArchiveClient.from_settings(settings)
    try:
        if migrate:
            upgrade(engine)
        yield Runtime(settings, engine, MarketDataRepository(engine), rest, archive)
    finally:
        archive.close()
        rest.close()
        engine.dispose()
