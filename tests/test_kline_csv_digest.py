"""A day's content digest computed from the archive text it was loaded from equals the one read back from
the table, on both databases, with real Binance rows; numbers the database would render differently get
no digest from the text (the load then reads it back)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketdata_assets.binance.klines import raw_klines_from_csv
from marketdata_assets.storage.day_content import day_digests, kline_csv_digest
from tests.support.samples import SAMPLES

REAL = [SAMPLES / "archive" / "um_klines_1m_BTCUSDT_2023-01-01_header_plus_first_row.csv",
        SAMPLES / "archive" / "um_klines_1m_BTCUSDT_2025-01-08_row_ms_timestamps.csv"]
# premium-index-like values: negative, long scales, zero counts
NEGATIVE = (b"1672531260000,-0.00012300,0.00000100,-0.00050000,-0.00010000,0,1672531319999,0,0,0,0,0\n"
            b"1672531320000,0.5,10,0.10,100.000,12.34500,1672531379999,0.0,7,1,2.0,0\n")


def _body(path) -> bytes:
    return b"".join(line + b"\n" for line in path.read_bytes().splitlines() if line[:1].isdigit())


@pytest.mark.parametrize("sample", [*REAL, None], ids=["2023-01-01", "2025-01-08", "negative"])
def test_the_digest_from_the_text_is_the_digest_read_back(repo, sample):
    body = _body(sample) if sample is not None else _body(REAL[0]) + NEGATIVE
    raw = raw_klines_from_csv(body, "BTCUSDT", "1m")
    repo.upsert_klines(raw)
    day = datetime.fromtimestamp(int(body.split(b",", 1)[0]) // 1000, UTC).date()
    with repo.engine.connect() as conn:
        stored = day_digests(conn, "klines", "BTCUSDT", "1m", [day])[day]
    assert kline_csv_digest(raw.csv) == stored and stored.rows == body.count(b"\n")


@pytest.mark.parametrize("value", [b"016537.50", b"-0.00", b"-0", b"16537.", b".5", b"-.5"])
def test_a_number_the_database_renders_differently_gets_no_digest_from_the_text(value):
    line = _body(REAL[0])
    fields = line.split(b",")
    fields[3] = value
    assert kline_csv_digest(b",".join(fields)) is None
    assert kline_csv_digest(line) is not None
