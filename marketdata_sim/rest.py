"""REST endpoints of fapi.binance.com (SPEC A.*): parameter rules, error codes and weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson
from aiohttp import web

from marketdata_sim import derived
from marketdata_sim.market import SimMarket, UnknownSymbolError
from marketdata_sim.symbols import SymbolSpec
from marketdata_sim.timegrid import REST_INTERVALS

MAX_KLINE_LIMIT = 1500
DEPTH_WEIGHTS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
KLINE_PATHS = {
    "/fapi/v1/klines": ("trade", "symbol"),
    "/fapi/v1/markPriceKlines": ("mark", "symbol"),
    "/fapi/v1/indexPriceKlines": ("index", "pair"),
    "/fapi/v1/premiumIndexKlines": ("premium", "symbol"),
}
MARKET_KEY = web.AppKey("market", SimMarket)


class BinanceError(Exception):
    """An error answered as {"code": ..., "msg": ...} with an HTTP status."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(err: BinanceError) -> web.Response:
    return json_response({"code": err.code, "msg": err.msg}, err.status)


def _int(q: Mapping[str, str], name: str) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 20:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                       "'^[0-9]{1,20}$'.")
    return int(raw)


def _required(q: Mapping[str, str], name: str) -> str:
    value = q.get(name)
    if not value:
        raise BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _limit(q: Mapping[str, str], default: int, maximum: int) -> int:
    raw = q.get("limit")
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    return int(raw)


def _symbol(market: SimMarket, q: Mapping[str, str], name: str = "symbol") -> SymbolSpec:
    try:
        return market.rest_spec(_required(q, name))
    except UnknownSymbolError:
        raise BinanceError(400, -1121, "Invalid symbol.") from None


def _times(q: Mapping[str, str]) -> tuple[int | None, int | None]:
    start, end = _int(q, "startTime"), _int(q, "endTime")
    if start is not None and end is not None and start > end:
        raise BinanceError(400, -1023, "Start time is greater than end time.")
    return start, end


def kline_weight(limit_raw: str | None) -> int:
    """[1,100) -> 1, [100,500) -> 2, [500,1000] -> 5, > 1000 -> 10 (SPEC A.3); default limit 500."""
    try:
        limit = int(limit_raw) if limit_raw else 500
    except ValueError:
        limit = 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def request_weight(path: str, q: Mapping[str, str]) -> int:
    """The REQUEST_WEIGHT of a request, computed from its raw parameters (also for invalid ones)."""
    if path in KLINE_PATHS:
        return kline_weight(q.get("limit"))
    if path == "/fapi/v1/depth":
        try:
            return DEPTH_WEIGHTS.get(int(q.get("limit") or 500), 10)
        except ValueError:
            return 10
    if path == "/fapi/v1/premiumIndex":
        return 1 if q.get("symbol") else 10
    if path == "/fapi/v1/ticker/24hr":
        return 1 if q.get("symbol") else 40
    if path == "/fapi/v1/aggTrades":
        return 20
    if path == "/fapi/v1/fundingRate":
        return 0
    return 1


def _market(request: web.Request) -> SimMarket:
    return request.app[MARKET_KEY]


async def ping(request: web.Request) -> web.Response:
    return json_response({})


async def server_time(request: web.Request) -> web.Response:
    return json_response({"serverTime": _market(request).now_ms})


async def exchange_info(request: web.Request) -> web.Response:
    from marketdata_sim.exchange_info import exchange_info as build
    from marketdata_sim.server import STATE_KEY

    return json_response(build(_market(request), request.app[STATE_KEY].limits.weight_limit))


def _kline_handler(kind: str, param: str) -> Callable:
    async def handler(request: web.Request) -> web.Response:
        q, market = request.query, _market(request)
        spec = _symbol(market, q, param)
        interval = _required(q, "interval")
        if interval not in REST_INTERVALS:
            raise BinanceError(400, -1120, "Invalid interval.")
        limit = _limit(q, 500, MAX_KLINE_LIMIT)
        start, end = _times(q)
        body = market.kline_page_json(spec.symbol, interval, start, end, limit, kind)
        return web.Response(body=body, content_type="application/json")

    return handler


async def funding_rate(request: web.Request) -> web.Response:
    q, market = request.query, _market(request)
    symbol = q.get("symbol") or None
    if symbol is not None:
        _symbol(market, q)
    limit = _limit(q, 100, 1000)
    start, end = _times(q)
    return json_response(derived.funding_rows(market, symbol, start, end, limit))


async def premium_index(request: web.Request) -> web.Response:
    q, market = request.query, _market(request)
    if q.get("symbol"):
        return json_response(derived.premium_index(market, _symbol(market, q)))
    return json_response([derived.premium_index(market, s) for s in market.trading_symbols()])


async def ticker_24h(request: web.Request) -> web.Response:
    q, market = request.query, _market(request)
    if q.get("symbol"):
        return json_response(derived.ticker_24h(market, _symbol(market, q)))
    return json_response([derived.ticker_24h(market, s) for s in market.trading_symbols()])


async def depth(request: web.Request) -> web.Response:
    q, market = request.query, _market(request)
    spec = _symbol(market, q)
    limit = _limit(q, 500, 1000)
    if limit not in DEPTH_WEIGHTS:
        raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    return json_response(derived.depth_snapshot(market, spec, limit))


async def agg_trades(request: web.Request) -> web.Response:
    q, market = request.query, _market(request)
    spec = _symbol(market, q)
    limit = _limit(q, 500, 1000)
    start, end = _times(q)
    if start is not None and end is not None and end - start >= derived.AGG_MAX_SPAN_MS:
        raise BinanceError(400, -1127, "More than 1 hours between startTime and endTime.")
    from_id = _int(q, "fromId")
    return json_response(derived.agg_trades(market, spec.symbol, from_id, start, end, limit))


def add_rest_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/fapi/v1/ping", ping)
    r.add_get("/fapi/v1/time", server_time)
    r.add_get("/fapi/v1/exchangeInfo", exchange_info)
    for path, (kind, param) in KLINE_PATHS.items():
        r.add_get(path, _kline_handler(kind, param))
    r.add_get("/fapi/v1/fundingRate", funding_rate)
    r.add_get("/fapi/v1/premiumIndex", premium_index)
    r.add_get("/fapi/v1/ticker/24hr", ticker_24h)
    r.add_get("/fapi/v1/depth", depth)
    r.add_get("/fapi/v1/aggTrades", agg_trades)
