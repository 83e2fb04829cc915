"""What every daily loader is built from: the Binance clients, one symbol directory, the exchange's clock.

Why a base: the loaders took these pieces four ways; one constructor shape, `XLoader(engine, rest, archive,
*, <dataset selector>, symbols=None, now_ms=None)`, lets a runtime build any of them alike.
"""

from __future__ import annotations

from collections.abc import Callable

from marketdata_assets.binance.archive import ArchiveClient
from marketdata_assets.binance.exchange_info import SymbolDirectory, SymbolInfo
from marketdata_assets.binance.rest import BinanceRestClient


class ExchangeLoader:
    """The clients, symbols and clock of a loader; `symbol_info` is where an unknown symbol is refused."""

    def __init__(self, rest: BinanceRestClient, archive: ArchiveClient | None, *,
                 symbols: dict[str, SymbolInfo] | None = None, now_ms: Callable[[], int] | None = None) -> None:
        self.rest = rest
        self.archive = archive
        self.directory = SymbolDirectory(rest.exchange_info, symbols)
        # the exchange's clock decides what has closed (a skewed local clock must not invent gaps)
        self.now_ms = now_ms or rest.server_time_ms

    def symbols(self) -> dict[str, SymbolInfo]:
        """exchangeInfo, fetched once per loader (weight 1)."""
        return self.directory.all()

    def symbol_info(self, symbol: str) -> SymbolInfo:
        """The symbol's listing and delisting; InvalidInputError when the exchange does not list it."""
        return self.directory.info(symbol)
