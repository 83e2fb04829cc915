"""A local Binance USD-M Futures (REST + data.binance.vision archive + WebSocket) for tests, demos, benchmarks.

Never imported by production code. See SimMarket (the data), build_app / SimServer / serve (the server).
"""

from marketdata_sim.market import DEFAULT_OUTAGES, SimMarket
from marketdata_sim.server import SimConfig, SimServer, build_app, serve

__all__ = ["DEFAULT_OUTAGES", "SimConfig", "SimMarket", "SimServer", "build_app", "serve"]
