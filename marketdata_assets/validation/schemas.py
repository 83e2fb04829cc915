"""The pandera schema of the canonical kline frame, and `validate_klines` that names offending rows.

The schema is per interval because `close_time = open_time + interval - 1 ms` and the open-time grid
depend on it. Checks are vectorised; pandera is called directly so its failure cases reach the caller.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from marketdata_assets.binance.intervals import interval_ms
from marketdata_assets.binance.klines import TIME_DTYPE
from marketdata_assets.validation.errors import KlineValidationError

__all__ = ["KlineValidationError", "kline_schema", "validate_klines"]

_PRICES = ("open", "high", "low", "close")
_VOLUMES = ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")


def _ms(series: pd.Series) -> pd.Series:
    return series.astype("int64")


@lru_cache(maxsize=32)
def kline_schema(interval: str, signed_prices: bool = False) -> pa.DataFrameSchema:
    """The schema for `interval`; `signed_prices` for the premium index, whose prices can be <= 0."""
    step = interval_ms(interval)
    price_checks = [] if signed_prices else [pa.Check.gt(0)]
    number = {"nullable": False, "coerce": False}
    return pa.DataFrameSchema(
        {
            "symbol": pa.Column(str, pa.Check.str_matches(r"^[A-Z0-9_]+$")),
            "interval": pa.Column(str, pa.Check.isin([interval])),
            "open_time": pa.Column(
                TIME_DTYPE,
                [
                    pa.Check(lambda s: _ms(s) % step == 0, error=f"open_time on the {interval} grid"),
                ],
                unique=True,
            ),
            **{p: pa.Column(float, price_checks, **number) for p in _PRICES},
            **{v: pa.Column(float, pa.Check.ge(0), **number) for v in _VOLUMES},
            "close_time": pa.Column(TIME_DTYPE),
            "trades_count": pa.Column("int64", pa.Check.ge(0)),
        },
        checks=[
            pa.Check(lambda df: _ms(df["close_time"]) == _ms(df["open_time"]) + step - 1,
                     error="close_time = open_time + interval - 1 ms"),
            pa.Check(lambda df: df["low"] <= df[["open", "close"]].min(axis=1), error="low <= open, close"),
            pa.Check(lambda df: df["high"] >= df[["open", "close"]].max(axis=1), error="high >= open, close"),
            pa.Check(lambda df: df["taker_buy_volume"] <= df["volume"], error="taker_buy_volume <= volume"),
            pa.Check(lambda df: df["taker_buy_quote_volume"] <= df["quote_volume"],
                     error="taker_buy_quote_volume <= quote_volume"),
        ],
        strict=False,
        ordered=False,
        name=f"klines_{interval}",
    )


def validate_klines(frame: pd.DataFrame, interval: str, label: str = "klines", *,
                    signed_prices: bool = False) -> pd.DataFrame:
    """Validate lazily (every failure collected); raise KlineValidationError naming the offending rows.

    Failure rows carry the offending open_time where the check is row-wise, so messages point at bars.
    """
    try:
        return kline_schema(interval, signed_prices).validate(frame, lazy=True)
    except SchemaErrors as exc:
        failures = exc.failure_cases.copy()
        # a frame-wide check is reported once per column by pandera: keep one line per row and check
        wide = failures["schema_context"] == "DataFrameSchema"
        failures.loc[wide, ["column", "failure_case"]] = None
        failures = failures.drop_duplicates(subset=["index", "check", "column"]).reset_index(drop=True)
        if "index" in failures and len(frame):
            idx = failures["index"]
            valid = idx.notna() & idx.isin(frame.index)
            failures["open_time"] = None
            offending = frame.loc[idx[valid].astype(int), "open_time"]
            failures.loc[valid, "open_time"] = offending.astype(str).values
        raise KlineValidationError(label, failures) from None


__all__ = ["KlineValidationError", "kline_schema", "validate_klines"]
