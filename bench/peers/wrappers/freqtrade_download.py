"""freqtrade's own `download-data` pointed at the simulator: `python freqtrade_download.py --sim URL --workdir DIR
-- <download-data arguments>`.

Runs in `.peers/freqtrade`, importing nothing from this project. What changes, all of it the address:
- the archive: freqtrade 2026.9 builds each daily zip URL in `binance_public_data.binance_vision_ohlcv_zip_url`
  with the host written into the f-string (there is no module constant to set), so that function is wrapped
  at runtime: same URL, the simulator's host in front;
- REST: freqtrade's ccxt instances get the simulator's fapi URLs through freqtrade's documented
  `exchange.ccxt_config`, and only the USD-M market list (`fetchMarkets.types = ["linear"]`), since the
  simulator serves neither the spot nor the coin-M exchangeInfo that ccxt's `binance` asks for by default.
Everything else is freqtrade's default: dry run, futures, isolated margin, its feather data format.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ARCHIVE_HOST = "https://data.binance.vision"


def write_config(sim: str, path: Path) -> None:
    api = {"fapiPublic": f"{sim}/fapi/v1", "fapiPublicV2": f"{sim}/fapi/v2", "fapiPublicV3": f"{sim}/fapi/v3",
           "fapiPrivate": f"{sim}/fapi/v1", "fapiPrivateV2": f"{sim}/fapi/v2", "fapiData": f"{sim}/futures/data"}
    config = {
        "exchange": {"name": "binance", "pair_whitelist": ["BTC/USDT:USDT"],
                     "ccxt_config": {"urls": {"api": api}, "options": {"fetchMarkets": {"types": ["linear"]}}}},
        "trading_mode": "futures", "margin_mode": "isolated", "stake_currency": "USDT", "dry_run": True,
    }
    path.write_text(json.dumps(config, indent=2))


def point_archive_at(sim: str) -> None:
    from freqtrade.exchange import binance_public_data

    original = binance_public_data.binance_vision_ohlcv_zip_url

    def zip_url(*args: object, **kwargs: object) -> str:
        url = original(*args, **kwargs)
        if not url.startswith(ARCHIVE_HOST):
            raise RuntimeError(f"freqtrade's archive URL changed shape: {url}")
        return sim + url.removeprefix(ARCHIVE_HOST)

    binance_public_data.binance_vision_ohlcv_zip_url = zip_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="config, user_data and data go here")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then download-data's own arguments")
    args = parser.parse_args()
    userdir, datadir, config = args.workdir / "user_data", args.workdir / "data", args.workdir / "config.json"
    userdir.mkdir(parents=True, exist_ok=True)
    write_config(args.sim, config)
    point_archive_at(args.sim)
    from freqtrade.main import main as freqtrade_main

    passthrough = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    freqtrade_main(["download-data", "--config", str(config), "--userdir", str(userdir), "--datadir", str(datadir),
                    *passthrough])


if __name__ == "__main__":
    sys.exit(main())
