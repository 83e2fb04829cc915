"""What the simulator serves, computed from its own generator: the truth every tool's output is checked against.

Why not read it back from the simulator over HTTP: the tools read it that way, so a transport or archive
defect would then be in the truth too. `SimMarket` with the simulator's defaults (seed 0, the default
outages) is a pure function of (symbol, time), so the bars here are exactly the ones its REST and archive
serve. Values are kept as integer units (price in 10**-price_decimals, etc.) for float comparisons, and as
Binance's exact text for exact comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from marketdata_sim.market import SimMarket
from marketdata_sim.symbols import SymbolSpec

OHLCV = ("open", "high", "low", "close", "volume")


@dataclass
class KlineTruth:
    """The 1m bars of one symbol opening in [start_ms, end_ms)."""

    spec: SymbolSpec
    start_ms: int
    end_ms: int  # exclusive
    bars: dict[str, np.ndarray]
    csv: bytes  # the archive layout, 12 columns, one line per bar

    @property
    def rows(self) -> int:
        return len(self.bars["open_time"])

    @cached_property
    def lines(self) -> list[bytes]:
        """Each bar as its first 11 archive fields (the 12th, `ignore`, is always 0), exact text."""
        return [line.rsplit(b",", 1)[0] for line in self.csv.splitlines()]

    def decimals(self, column: str) -> int:
        return self.spec.qty_decimals if column == "volume" else self.spec.price_decimals

    def floats(self, column: str) -> np.ndarray:
        """A column as the doubles a float parser makes of Binance's text (correctly rounded)."""
        return self.bars[column].astype(np.float64) / 10.0 ** self.decimals(column)


def kline_truth(symbol: str, start_ms: int, end_ms: int, now: str) -> KlineTruth:
    market = SimMarket(now=now)
    spec = market.spec(symbol)
    bars = market.bars(spec, "1m", start_ms, end_ms)
    return KlineTruth(spec, start_ms, end_ms, bars, market.kline_csv(spec, "1m", bars))
