"""The canonical kline schema and the gap functions, on real recorded Binance rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from marketdata_assets.binance.klines import raw_klines_from_csv, raw_klines_from_rest
from marketdata_assets.validation.gaps import (
    EXCHANGE_GAP,
    FILLABLE,
    OUT_OF_RANGE,
    UNCLASSIFIED,
    Gap,
    classify,
    clip_to_range,
    find_missing,
)
from marketdata_assets.validation.schemas import KlineValidationError, validate_klines
from tests.support.samples import SAMPLES

M = 60_000


@pytest.fixture
def real_5m() -> pd.DataFrame:
    rows = json.loads((SAMPLES / "rest" / "klines_BTCUSDT_5m_2021-03-21_hexdocs_binance_futures.json").read_text())
    return raw_klines_from_rest(rows, "BTCUSDT", "5m").frame


def test_real_rows_pass(real_5m):
    assert len(validate_klines(real_5m, "5m")) == 2
    archive = (SAMPLES / "archive" / "um_klines_1m_BTCUSDT_2023-01-01_header_plus_first_row.csv").read_bytes()
    assert len(validate_klines(raw_klines_from_csv(archive, "BTCUSDT", "1m").frame, "1m")) == 1


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("low", 99_999.0, "low <= open, close"),
        ("high", 1.0, "high >= open, close"),
        ("taker_buy_volume", 10_000.0, "taker_buy_volume <= volume"),
        ("volume", -1.0, "greater_than_or_equal_to(0)"),
        ("close_time", pd.Timestamp("2021-03-21 15:05:00", tz="UTC"), "close_time = open_time + interval - 1 ms"),
        ("open_time", pd.Timestamp("2021-03-21 15:01:00", tz="UTC"), "on the 5m grid"),
    ],
)
def test_a_broken_row_is_named_by_its_position_and_open_time(real_5m, column, value, expected):
    real_5m.loc[1, column] = value
    with pytest.raises(KlineValidationError) as caught:
        validate_klines(real_5m, "5m", "BTCUSDT 5m 2021-03-21")
    message = str(caught.value)
    assert message.startswith("BTCUSDT 5m 2021-03-21: ")
    assert expected in message
    assert "row 1" in message
    assert "row 0" not in message  # the good row is not blamed


def test_duplicate_open_times_fail(real_5m):
    real_5m.loc[1, "open_time"] = real_5m.loc[0, "open_time"]
    real_5m.loc[1, "close_time"] = real_5m.loc[0, "close_time"]
    with pytest.raises(KlineValidationError, match="field_uniqueness"):
        validate_klines(real_5m, "5m")


def test_find_missing_runs():
    assert find_missing([0, M, 3 * M, 5 * M], "1m", 0, 7 * M) == [
        Gap("1m", 2 * M, 3 * M), Gap("1m", 4 * M, 5 * M), Gap("1m", 6 * M, 7 * M)
    ]
    assert find_missing(range(0, 10 * M, M), "1m", 0, 10 * M) == []
    assert find_missing([], "1h", 0, 3 * 60 * M)[0].bars == 3


def test_clip_to_range_splits_at_listing_delisting_and_now():
    listing = 3 * M
    clipped = clip_to_range([Gap("1m", 0, 10 * M)], listing, None, 8 * M - 1)
    assert [(g.start_ms, g.end_ms, g.cls) for g in clipped] == [
        (0, 3 * M, OUT_OF_RANGE), (3 * M, 7 * M, UNCLASSIFIED), (7 * M, 10 * M, OUT_OF_RANGE)
    ]  # the bar opening at 7m has not closed at 8m - 1 ms: not a gap yet
    assert clip_to_range([Gap("1m", 0, 10 * M)], listing, 9 * M, 20 * M)[1] == Gap("1m", 3 * M, 9 * M)


def test_classify_asks_the_exchange():
    gaps = classify([Gap("1m", 0, 5 * M)], lambda gap: [2 * M, 3 * M])
    assert [(g.start_ms, g.end_ms, g.cls) for g in gaps] == [
        (0, 2 * M, EXCHANGE_GAP), (2 * M, 4 * M, FILLABLE), (4 * M, 5 * M, EXCHANGE_GAP)
    ]
