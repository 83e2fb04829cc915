"""marketdata: a gap-free history of Binance USD-M Futures market data, orchestrated by Dagster.

`marketdata_assets.binance`, `.storage` and `.validation` never import Dagster: the streaming sidecar
uses them and stays light. Dagster lives in `marketdata_assets.defs` and `marketdata_assets.definitions`.
"""
