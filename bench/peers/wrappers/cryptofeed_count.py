"""cryptofeed's BinanceFutures aggTrade feed against the simulator, with a callback that only counts.

Runs in `.peers/cryptofeed` (Python 3.13), importing nothing from this project. Two runtime changes, both
pointing it at the simulator: the endpoints' addresses (the simulator's `ws://` and `http://` instead of
Binance's), and `WSAsyncConn`'s refusal of `ws://` addresses, which is skipped by handing the check a
`wss://` spelling and keeping the real address. Everything else (decoding, normalising into `Trade`
objects, uvloop, the default config) is cryptofeed's own.

On SIGUSR1 it prints one JSON line with the trades counted so far, so that the parent reads the count and
the process CPU at the same moment; the first such line (count 0) comes once the handler is in place.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from cryptofeed import FeedHandler
from cryptofeed.connection import WSAsyncConn
from cryptofeed.defines import TRADES
from cryptofeed.exchanges import BinanceFutures

_original_init = WSAsyncConn.__init__


def _init_allowing_ws(self: WSAsyncConn, address: str, *args: object, **kwargs: object) -> None:
    checked = "wss://" + address.removeprefix("ws://") if address.startswith("ws://") else address
    _original_init(self, checked, *args, **kwargs)
    self.address = address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", required=True, help="http://host:port of the simulator")
    parser.add_argument("--symbols", nargs="+", required=True, help="exchange symbols, e.g. BTCUSDT")
    args = parser.parse_args()
    WSAsyncConn.__init__ = _init_allowing_ws  # type: ignore[method-assign]
    BinanceFutures.websocket_endpoints[0].address = args.sim.replace("http://", "ws://", 1)
    BinanceFutures.rest_endpoints[0].address = args.sim
    count = 0

    async def on_trade(_trade: object, _receipt_timestamp: float) -> None:
        nonlocal count
        count += 1

    def report(_signum: int, _frame: object) -> None:
        sys.stdout.write(json.dumps({"count": count}) + "\n")
        sys.stdout.flush()

    signal.signal(signal.SIGUSR1, report)
    report(0, None)  # the first line says the handler is in place (a count of 0)

    symbols = [f"{s.removesuffix('USDT')}-USDT-PERP" for s in args.symbols]
    handler = FeedHandler()
    handler.add_feed(BinanceFutures(symbols=symbols, channels=[TRADES], callbacks={TRADES: on_trade}))
    handler.run()


if __name__ == "__main__":
    main()
