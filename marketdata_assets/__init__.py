"""marketdata: a gap-free history of Binance USD-M Futures market data, orchestrated by Dagster.

`marketdata_assets.binance`, `.storage` and `.validation` never import Dagster: the streaming sidecar
uses them and stays light. Dagster lives in `marketdata_assets.defs` and `marketdata_assets.definitions`.
"""

import sys as _sys
import types as _types


def _leave_out_the_httpx_cli() -> None:
    """`import httpx` (0.28-0.29) also imports its command-line tool, and with it click, rich and pygments
    (80 ms of every process start here), whenever those happen to be installed, as Dagster's dependencies
    are. No marketdata process runs that tool: a stand-in takes its place before httpx is first imported,
    and says so if it is ever called. Upstream discussion: the lazy import merged in pydantic/httpx2#947."""
    if "httpx" in _sys.modules or "httpx._main" in _sys.modules:
        return
    stand_in = _types.ModuleType("httpx._main", "httpx's command-line tool, left out by marketdata")

    def main() -> None:
        raise RuntimeError("the httpx command-line tool is not loaded in marketdata processes: run `httpx` itself")

    stand_in.main = main  # type: ignore[attr-defined]
    _sys.modules["httpx._main"] = stand_in


_leave_out_the_httpx_cli()
