"""The project's REST client fetching one range of 1m klines, as a process of its own (row a/b's project side).

Why a driver and not the CLI: `marketdata download --source rest` also validates and stores, while the
peers' REST calls only return rows in memory; the like-for-like figure is the client alone,
`BinanceRestClient.klines` (its weight budget, retries and paging at limit 499 included). The CLI's
end-to-end REST load is timed as well, in its own column.

Prints one JSON line like the peers' wrappers: rows, fetch seconds, and the seconds spent writing `--out`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", required=True)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--start-ms", type=int, required=True)
    parser.add_argument("--end-ms", type=int, required=True, help="exclusive")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    from marketdata_assets.binance.rest import BinanceRestClient

    with BinanceRestClient(base_url=args.sim) as client:
        raw = client.klines(args.symbol, "1m", args.start_ms, args.end_ms)
    fetched = time.perf_counter()
    args.out.write_bytes(raw.csv)
    print(json.dumps({"rows": len(raw), "fetch_s": fetched - started, "dump_s": time.perf_counter() - fetched}))


if __name__ == "__main__":
    main()
