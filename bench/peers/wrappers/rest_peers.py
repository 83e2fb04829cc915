"""python-binance and ccxt fetching one range of 1m futures klines from the simulator, as users call them.

Runs in the peers' own virtualenv (`.peers/rest`), so it imports nothing from this project. The only change
to either library is its base URL (the simulator's); `--no-throttle` removes exactly the client-side throttle
each one has (python-binance's `time.sleep(1)` after every third page, ccxt's `enableRateLimit`).

Prints one JSON line: rows fetched, the fetch's own seconds and the seconds spent writing `--out` (the
parent subtracts the latter: dumping the result for the correctness check is not the peer's work).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from typing import Any


def fetch_python_binance(sim: str, symbol: str, start_ms: int, end_ms: int, throttle: bool) -> list[list[Any]]:
    """`Client.futures_historical_klines`: python-binance's own futures pagination (limit 1000)."""
    import binance.client
    from binance.client import Client

    if not throttle:
        # the module's `time` is the stdlib module; give the module a copy whose sleep does nothing
        binance.client.time = types.SimpleNamespace(**{**vars(time), "sleep": lambda _seconds: None})
    # ping=False: the constructor's ping goes to the spot API, which the simulator does not serve
    client = Client(ping=False)
    client.FUTURES_URL = f"{sim}/fapi"
    return client.futures_historical_klines(symbol, "1m", start_ms, end_ms - 1)


def fetch_ccxt(sim: str, symbol: str, start_ms: int, end_ms: int, throttle: bool) -> list[list[Any]]:
    """`binanceusdm.fetch_ohlcv` with ccxt's own pagination (`paginate`, enough `paginationCalls`)."""
    import ccxt

    api = {name: f"{sim}/fapi/{version}" for name, version in
           (("fapiPublic", "v1"), ("fapiPublicV2", "v2"), ("fapiPublicV3", "v3"), ("fapiPrivate", "v1"))}
    exchange = ccxt.binanceusdm({"enableRateLimit": throttle, "urls": {"api": api}})
    market = f"{symbol.removesuffix('USDT')}/USDT:USDT"
    pages = -(-(end_ms - start_ms) // (1000 * 60_000)) + 1
    return exchange.fetch_ohlcv(market, "1m", since=start_ms,
                                params={"paginate": True, "paginationCalls": pages, "until": end_ms - 1})


PEERS = {"python-binance": fetch_python_binance, "ccxt": fetch_ccxt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--sim", required=True)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--start-ms", type=int, required=True)
    parser.add_argument("--end-ms", type=int, required=True, help="exclusive")
    parser.add_argument("--no-throttle", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = PEERS[args.peer](args.sim, args.symbol, args.start_ms, args.end_ms, not args.no_throttle)
    fetched = time.perf_counter()
    with open(args.out, "w") as out:
        json.dump(rows, out)
    print(json.dumps({"rows": len(rows), "fetch_s": fetched - started, "dump_s": time.perf_counter() - fetched}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
