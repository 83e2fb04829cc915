"""Helpers shared by the non-kline dataset assets (price klines, funding, aggregate trades, ...)."""
