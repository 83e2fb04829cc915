"""The four kinds of kline Binance publishes for USD-M futures, named once.

A kind is Binance's own word (REST path `/fapi/v1/<kind>` and archive data type) for trade klines and the
mark price, index price and premium index klines. Everything that varies by kind lives here: the REST
parameter naming the instrument (SPEC A.4: indexPriceKlines takes `pair`, which for USD-M perpetuals is
the symbol), our table and ledger dataset, whether prices may be <= 0 (the premium index is a signed
difference), and the words the UI uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KlineKind:
    name: str  # Binance's: REST path and archive data type
    dataset: str  # our table and ledger dataset
    instrument_param: str  # the REST query parameter naming the instrument
    signed_prices: bool  # prices can be zero or negative
    label: str  # what the UI calls it

    @property
    def is_trade(self) -> bool:
        return self.name == TRADE_KLINES


TRADE_KLINES = "klines"
KLINE_KINDS: dict[str, KlineKind] = {k.name: k for k in (
    KlineKind(TRADE_KLINES, "klines", "symbol", False, "trade"),
    KlineKind("markPriceKlines", "mark_price_klines", "symbol", False, "mark price"),
    KlineKind("indexPriceKlines", "index_price_klines", "pair", False,
              "index price (by pair, which for USD-M perpetuals is the symbol)"),
    KlineKind("premiumIndexKlines", "premium_index_klines", "symbol", True,
              "premium index (signed: can be zero or negative)"),
)}
PRICE_KLINE_KINDS = tuple(k for k in KLINE_KINDS if k != TRADE_KLINES)
# ledger dataset -> kind
KIND_OF_DATASET = {k.dataset: k.name for k in KLINE_KINDS.values()}
