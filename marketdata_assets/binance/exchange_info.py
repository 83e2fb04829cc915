"""Symbols as exchangeInfo describes them: status, contract type, listing and delisting times.

The loaders use listing/delisting to tell a gap from a day out of range (DESIGN.md section 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from marketdata_assets.binance.intervals import InvalidInputError, validate_symbol

# Perpetuals carry this far-future deliveryDate as a sentinel (SPEC A.5); real BTCUSDT sometimes adds 2 s.
PERPETUAL_SENTINEL_MS = 4_133_404_800_000


DELISTED_STATUSES = frozenset({"SETTLING", "CLOSE", "DELIVERED"})


@dataclass(frozen=True)
class SymbolInfo:
    symbol: str
    status: str
    contract_type: str
    onboard_ms: int | None
    delivery_ms: int | None  # None for a perpetual with no delisting scheduled

    @property
    def is_trading_perpetual(self) -> bool:
        return self.status == "TRADING" and self.contract_type == "PERPETUAL"

    @property
    def is_delisted(self) -> bool:
        """Settling or closed (a delisted perpetual), or delivered (an expired quarterly): SPEC D.3."""
        return self.status in DELISTED_STATUSES

    def as_dict(self) -> dict:
        return {
            "symbol": self.symbol, "status": self.status, "contract_type": self.contract_type,
            "onboard_ms": self.onboard_ms, "delivery_ms": self.delivery_ms,
        }


def parse_exchange_info(payload: dict) -> dict[str, SymbolInfo]:
    """Every symbol of an exchangeInfo answer, keyed by name."""
    out: dict[str, SymbolInfo] = {}
    for entry in payload.get("symbols", []):
        delivery = entry.get("deliveryDate")
        if delivery is not None and int(delivery) >= PERPETUAL_SENTINEL_MS:
            delivery = None
        onboard = entry.get("onboardDate")
        out[entry["symbol"]] = SymbolInfo(
            symbol=entry["symbol"],
            status=entry.get("status", ""),
            contract_type=entry.get("contractType", ""),
            onboard_ms=int(onboard) if onboard is not None else None,
            delivery_ms=int(delivery) if delivery is not None else None,
        )
    return out


def trading_perpetuals(symbols: dict[str, SymbolInfo]) -> list[str]:
    """Names of symbols with status TRADING and contract type PERPETUAL (SPEC A.5), sorted."""
    return sorted(name for name, info in symbols.items() if info.is_trading_perpetual)


class SymbolDirectory:
    """exchangeInfo's symbols, fetched once on first use (weight 1); `info` refuses a symbol it lacks.

    Every loader validates its symbol through one of these, so "unknown symbol" reads the same everywhere.
    """

    def __init__(self, fetch: Callable[[], dict], symbols: dict[str, SymbolInfo] | None = None) -> None:
        self._fetch = fetch
        self._symbols = symbols

    def all(self) -> dict[str, SymbolInfo]:
        if self._symbols is None:
            self._symbols = parse_exchange_info(self._fetch())
        return self._symbols

    def info(self, symbol: str) -> SymbolInfo:
        validate_symbol(symbol)
        info = self.all().get(symbol)
        if info is None:
            raise InvalidInputError(f"unknown symbol {symbol!r}: not in the exchange's exchangeInfo")
        return info
