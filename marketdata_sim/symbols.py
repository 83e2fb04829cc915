"""The simulated contracts: listing dates, tick and lot sizes, liquidity, funding schedule.

Each symbol fixes the decimals of its prices, quantities and quote volumes, so that every value is an
integer count of units and prints exactly as Binance prints it (BTCUSDT "16537.50", "170.576").
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

PERPETUAL_DELIVERY_SENTINEL = 4133404800000  # 2100-12-25 08:00 UTC (SPEC A.5)
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MARK_DECIMALS = 8  # mark/index/premium prices and funding rates (SPEC A.4, A.6, A.7)


def utc_ms(text: str) -> int:
    """'2024-02-15 08:00' (UTC) -> ms."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    base_asset: str
    onboard_ms: int
    price_decimals: int
    tick_units: int  # tickSize in units of 10**-price_decimals
    qty_decimals: int  # stepSize is one unit of 10**-qty_decimals
    quote_decimals: int
    base_price: float
    sigma: float = 0.0007  # per-minute log-price volatility
    trades_per_minute: int = 300  # mean kline `count`; a day holds exactly 1440 * this many trades
    trades_per_agg: int = 4
    lots_per_trade: int = 100  # mean quantity per trade in stepSize units
    zero_volume_prob: float = 0.0  # share of minutes without trades (zero-volume bars, SPEC D.2)
    delist_ms: int | None = None  # deliveryDate after the delisting announcement
    announce_days: int = 7  # deliveryDate is published this long before delisting
    removed_at_delist: bool = False  # leaves exchangeInfo at delisting (REST then answers -1121)
    # (from_ms, hours): funding every `hours` from that time on
    funding_schedule: tuple[tuple[int, int], ...] = field(default=((0, 8),))
    quote_asset: str = "USDT"

    @property
    def sid(self) -> int:
        """A stable number for seeding: adding symbols does not change the data of others."""
        return zlib.crc32(self.symbol.encode())

    @property
    def trades_per_day(self) -> int:
        return 1440 * self.trades_per_minute

    @property
    def aggs_per_day(self) -> int:
        return max(1440, self.trades_per_day // self.trades_per_agg)

    def tick_text(self) -> str:
        return _units_text(self.tick_units, self.price_decimals)

    def step_text(self) -> str:
        return _units_text(1, self.qty_decimals)

    def end_ms(self) -> int:
        """First ms without data (delisting) or a far-future bound."""
        return self.delist_ms if self.delist_ms is not None else PERPETUAL_DELIVERY_SENTINEL

    def funding_hours_at(self, ms: int) -> int:
        hours = self.funding_schedule[0][1]
        for start, h in self.funding_schedule:
            if ms >= start:
                hours = h
        return hours


def _units_text(units: int, decimals: int) -> str:
    if decimals == 0:
        return str(units)
    text = f"{units / 10**decimals:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def default_symbols() -> dict[str, SymbolSpec]:
    """BTC/ETH/SOL with their real onboard dates, a late listing, a delisted-but-listed and a removed one."""
    specs = [
        SymbolSpec("BTCUSDT", "BTC", utc_ms("2019-09-25 08:00"), 2, 10, 3, 5, 30000.0,
                   sigma=0.0007, trades_per_minute=600, lots_per_trade=300),
        SymbolSpec("ETHUSDT", "ETH", utc_ms("2019-11-27 07:00"), 2, 1, 3, 5, 2000.0,
                   sigma=0.0008, trades_per_minute=400, lots_per_trade=2000),
        SymbolSpec("SOLUSDT", "SOL", utc_ms("2020-09-14 07:00"), 4, 100, 2, 4, 100.0,
                   sigma=0.001, trades_per_minute=200, lots_per_trade=1000,
                   funding_schedule=((0, 8), (utc_ms("2023-10-01 00:00"), 4))),
        SymbolSpec("NEWUSDT", "NEW", utc_ms("2024-02-15 08:00"), 4, 1, 0, 4, 7.6,
                   sigma=0.0015, trades_per_minute=50, trades_per_agg=3, lots_per_trade=60,
                   funding_schedule=((0, 4),)),
        SymbolSpec("OLDUSDT", "OLD", utc_ms("2021-01-01 00:00"), 5, 1, 0, 5, 0.05,
                   sigma=0.0012, trades_per_minute=3, trades_per_agg=2, lots_per_trade=500,
                   zero_volume_prob=0.25, delist_ms=utc_ms("2024-02-20 08:00")),
        SymbolSpec("GONEUSDT", "GONE", utc_ms("2020-06-01 00:00"), 3, 1, 1, 4, 60.0,
                   sigma=0.0012, trades_per_minute=40, lots_per_trade=30,
                   delist_ms=utc_ms("2022-05-13 08:00"), removed_at_delist=True),
    ]
    return {s.symbol: s for s in specs}
