"""`marketdata sim`: argparse-style `add_arguments(parser)` + `run(args)`, mounted by the main CLI.

Also runnable alone: `python -m marketdata_sim --port 8765 --now 2024-04-02T12:00:00Z`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port for REST, archive and WebSocket")
    parser.add_argument("--now", default=None,
                        help="freeze the market clock (ms or ISO, e.g. 2024-04-02T12:00:00Z); default real time")
    parser.add_argument("--seed", type=int, default=0, help="market seed (default 0)")
    parser.add_argument("--weight-limit", type=int, default=2400, help="REQUEST_WEIGHT per minute")
    parser.add_argument("--ban-ms", type=int, default=120_000, help="length of a 418 IP ban in ms")
    parser.add_argument("--no-outages", action="store_true", help="disable the default outage windows")


def run(args: argparse.Namespace) -> None:
    # imported here, not at import time, so that `marketdata sim --help` stays light (no numpy, aiohttp)
    from marketdata_sim.market import DEFAULT_OUTAGES
    from marketdata_sim.server import serve

    serve(port=args.port, host=args.host, now=args.now, seed=args.seed, weight_limit=args.weight_limit,
          ban_ms=args.ban_ms, outages=() if args.no_outages else DEFAULT_OUTAGES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="marketdata sim", description="local Binance USD-M simulator")
    add_arguments(parser)
    run(parser.parse_args(argv))
