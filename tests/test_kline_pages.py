"""REST kline pages read as CSV without decoding every value (binance/kline_pages.py): byte for byte what
decoding the JSON and writing each row gives, on real recorded pages, in Binance's compact layout and as
reformatted with spaces; anything not in that layout is decoded as JSON or refused."""

from __future__ import annotations

import json

import orjson
import pytest

from marketdata_assets.binance.kline_pages import ascending_unique, compact_page_csv, page_rows
from marketdata_assets.binance.klines import KlineFormatError, RawKlines, raw_klines_from_rest
from tests.support.samples import SAMPLES

PAGES = ["klines_BTCUSDT_5m_2021-03-21_hexdocs_binance_futures.json", "klines_DOC_EXAMPLE_not_real.json",
         "premiumIndexKlines_DOC_EXAMPLE.json", "markPriceKlines_DOC_EXAMPLE_not_real.json",
         "continuousKlines_BTCUSDT_PERPETUAL_5m_2021-03-21_hexdocs.json"]


@pytest.mark.parametrize("name", PAGES)
def test_a_recorded_page_reads_as_the_rows_it_decodes_to(name):
    recorded = (SAMPLES / "rest" / name).read_bytes()
    expected = raw_klines_from_rest(json.loads(recorded), "BTCUSDT", "5m").csv
    compact = orjson.dumps(json.loads(recorded))  # the layout fapi sends
    assert compact_page_csv(compact) == expected
    assert compact_page_csv(recorded) is None  # spaces: decoded as JSON instead
    assert page_rows(recorded, "BTCUSDT", "5m").csv == page_rows(compact, "BTCUSDT", "5m").csv == expected


@pytest.mark.parametrize("body", [b'[[1,"2,5",3,4,5,6,7,8,9,10,11,12]]', b'[[1,"2",3]]',
                                  b'[[1,,3,4,5,6,7,8,9,10,11,12]]', b'[[1,"NaN",3,4,5,6,7,8,9,10,11,12]]',
                                  b"[[[1,2,3,4,5,6,7,8,9,10,11,12]]]"])
def test_a_body_outside_the_compact_layout_is_not_read_as_csv(body):
    assert compact_page_csv(body) is None


@pytest.mark.parametrize("body", [b'{"code":-1121,"msg":"Invalid symbol."}', b"<html>", b"[1,2]"])
def test_a_body_that_is_no_array_of_arrays_is_refused(body):
    with pytest.raises(KlineFormatError):
        page_rows(body, "BTCUSDT", "1m")


def test_an_empty_page_is_no_rows():
    assert page_rows(b"[]", "BTCUSDT", "1m").csv == b""


def _line(t: int, close: str) -> bytes:
    return f"{t},1.0,2.0,0.5,{close},3.0,{t + 59_999},4.0,5,1.0,2.0,0\n".encode()


def test_pages_out_of_order_or_repeating_a_bar_come_out_ascending_with_the_last_sent_kept():
    first = RawKlines("BTCUSDT", "1m", "rest", _line(120_000, "1.1") + _line(180_000, "1.2"))
    earlier = RawKlines("BTCUSDT", "1m", "rest", _line(60_000, "1.0") + _line(120_000, "9.9"))
    assert ascending_unique([first, earlier]) == _line(60_000, "1.0") + _line(120_000, "9.9") + _line(180_000, "1.2")
    assert ascending_unique([earlier, RawKlines("BTCUSDT", "1m", "rest", b"")]) == earlier.csv
