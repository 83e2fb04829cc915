"""/fapi/v1/exchangeInfo in the shape of the real 2021 response (samples/rest/exchangeInfo_full_*.json)."""

from __future__ import annotations

from marketdata_sim.market import SimMarket
from marketdata_sim.symbols import SymbolSpec

ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
               "TRAILING_STOP_MARKET"]


def _symbol_entry(market: SimMarket, spec: SymbolSpec) -> dict:
    tick, step = spec.tick_text(), spec.step_text()
    return {
        "symbol": spec.symbol, "pair": spec.symbol, "contractType": "PERPETUAL",
        "deliveryDate": market.delivery_date(spec), "onboardDate": spec.onboard_ms,
        "status": market.status(spec), "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base_asset, "quoteAsset": spec.quote_asset, "marginAsset": spec.quote_asset,
        "pricePrecision": spec.price_decimals, "quantityPrecision": spec.qty_decimals,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
        "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012000", "marketTakeBound": "0.30",
        "filters": [
            {"minPrice": tick, "maxPrice": "1000000", "filterType": "PRICE_FILTER", "tickSize": tick},
            {"stepSize": step, "filterType": "LOT_SIZE", "maxQty": "1000000", "minQty": step},
            {"stepSize": step, "filterType": "MARKET_LOT_SIZE", "maxQty": "100000", "minQty": step},
            {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
            {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
            {"notional": "5", "filterType": "MIN_NOTIONAL"},
            {"multiplierDown": "0.8500", "multiplierUp": "1.1500", "multiplierDecimal": "4",
             "filterType": "PERCENT_PRICE"},
        ],
        "orderTypes": ORDER_TYPES,
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def exchange_info(market: SimMarket, weight_limit: int = 2400) -> dict:
    specs = market.listed_symbols()
    assets = [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}]
    assets += [{"asset": a, "marginAvailable": False, "autoAssetExchange": "0"}
               for a in sorted({s.base_asset for s in specs})]
    return {
        "timezone": "UTC",
        "serverTime": market.now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": assets,
        "symbols": [_symbol_entry(market, s) for s in specs],
    }
