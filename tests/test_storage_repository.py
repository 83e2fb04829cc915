"""MarketDataRepository on PostgreSQL and SQLite: the same tests run on both (the `repo` fixture)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest
import sqlalchemy as sa

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.binance.klines import FRAME_COLUMNS, KlineFormatError, RawKlines, raw_klines_from_csv
from marketdata_assets.storage import LedgerRow, MarketDataRepository
from marketdata_assets.storage.tables import kline_data
from marketdata_assets.validation.gaps import EXCHANGE_GAP, Gap
from tests.support.samples import SAMPLES as SAMPLES_ROOT

SAMPLES = SAMPLES_ROOT / "archive"
HOUR = 3_600_000
BTC_1M = "um_klines_1m_BTCUSDT_2023-01-01_header_plus_first_row.csv"  # 16537.50 ... 2820697.45580
BTC_1H = "spot_klines_1h_BTCUSDT_2023-10-27_NO_header_rows.csv"  # 3 rows, 8-decimal scale
T0_1H = 1_698_364_800_000  # 2023-10-27T00:00Z


def sample(name: str, symbol: str = "BTCUSDT", interval: str = "1m", source: str = "archive") -> RawKlines:
    return raw_klines_from_csv((SAMPLES / name).read_bytes(), symbol, interval, source, name=name)


def hourly(source: str = "archive") -> RawKlines:
    return sample(BTC_1H, interval="1h", source=source)


def with_close(raw: RawKlines, close: str, source: str) -> RawKlines:
    """The same bars with another close price (a provisional value that the archive later corrects)."""
    lines = []
    for line in raw.csv.decode().splitlines():
        fields = line.split(",")
        fields[4] = close
        lines.append(",".join(fields) + "\n")
    return RawKlines(raw.symbol, raw.interval, source, "".join(lines).encode())


def stored(repo: MarketDataRepository, symbol: str = "BTCUSDT", interval: str = "1h") -> list[dict]:
    """Rows as the database holds them (id, source, ingested_at included), in open_time order."""
    k = kline_data.c
    query = sa.select(kline_data).where(k.symbol == symbol, k.interval == interval).order_by(k.open_time)
    with repo.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def test_exact_decimals_round_trip(repo):
    raw = sample(BTC_1M)
    assert repo.upsert_klines(raw).inserted == 1
    frame = repo.get_klines("BTCUSDT", "1m", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC),
                            exact=True)
    row = frame.iloc[0]
    assert str(row["open"]) == "16537.50"  # the scale Binance sent, not 16537.5
    assert str(row["quote_volume"]) == "2820697.45580"
    assert str(row["taker_buy_quote_volume"]) == "1716164.80590"
    assert row["trades_count"] == 946
    # a 17-significant-digit volume that a float would round
    big = "99999999.123456789"
    assert float(big) != Decimal(big)
    fields = sample(BTC_1H, interval="1h").csv.decode().splitlines()[0].split(",")
    fields[7] = big
    repo.upsert_klines(RawKlines("ETHUSDT", "1h", "archive", (",".join(fields) + "\n").encode()))
    exact = repo.get_klines("ETHUSDT", "1h", T0_1H, T0_1H + HOUR, exact=True)
    assert exact["quote_volume"].tolist() == [Decimal(big)]
    assert str(exact["quote_volume"].iloc[0]) == big
    assert str(stored(repo, "ETHUSDT")[0]["volume"]) == "908.27901000"


def test_reupsert_of_same_data_changes_no_row(repo):
    first = repo.upsert_klines(hourly())
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    before = stored(repo)
    again = repo.upsert_klines(hourly())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert stored(repo) == before  # same ids, same ingested_at


def test_archive_row_is_not_overwritten_by_rest_or_stream(repo):
    repo.upsert_klines(hourly("archive"))
    for source in ("rest", "stream"):
        result = repo.upsert_klines(with_close(hourly(), "1.00", source))
        assert (result.inserted, result.updated, result.unchanged) == (0, 0, 3)
    rows = stored(repo)
    assert {r["source"] for r in rows} == {"archive"}
    assert [str(r["close"]) for r in rows] == ["34015.27000000", "33848.47000000", "34088.57000000"]


def test_provisional_row_with_identical_values_is_promoted_to_archive(repo):
    repo.upsert_klines(hourly("rest"))
    result = repo.upsert_klines(hourly("archive"))
    assert (result.inserted, result.updated, result.unchanged) == (0, 3, 0)
    assert {r["source"] for r in stored(repo)} == {"archive"}
    # and once archived, the same archive data again is a no-op
    assert repo.upsert_klines(hourly("archive")).updated == 0


def test_archive_values_replace_differing_provisional_values(repo):
    repo.upsert_klines(with_close(hourly(), "1.00", "stream"))
    result = repo.upsert_klines(hourly("archive"))
    assert result.updated == 3
    rows = stored(repo)
    assert [str(r["close"]) for r in rows] == ["34015.27000000", "33848.47000000", "34088.57000000"]
    assert {r["source"] for r in rows} == {"archive"}


def test_newer_provisional_values_replace_provisional_rows(repo):
    repo.upsert_klines(hourly("stream"))
    result = repo.upsert_klines(with_close(hourly(), "2.50", "rest"))
    assert (result.inserted, result.updated) == (0, 3)
    assert {(str(r["close"]), r["source"]) for r in stored(repo)} == {("2.50", "rest")}
    # equal values from another provisional source: nothing to write
    assert repo.upsert_klines(with_close(hourly(), "2.50", "stream")).updated == 0
    assert {r["source"] for r in stored(repo)} == {"rest"}


def test_partial_overlap_inserts_new_and_keeps_existing(repo):
    raw = hourly()
    repo.upsert_klines(raw.select(T0_1H, T0_1H + HOUR))
    result = repo.upsert_klines(raw)
    assert (result.inserted, result.updated, result.unchanged) == (2, 0, 1)
    assert repo.count_klines("BTCUSDT", "1h") == 3


def test_several_batches_in_one_call(repo):
    result = repo.upsert_klines([hourly(), sample(BTC_1M), RawKlines("SOLUSDT", "1h", "rest", hourly().csv)])
    assert result.inserted == 7
    assert repo.count_klines() == 7
    assert repo.count_klines("SOLUSDT") == 3
    assert repo.upsert_klines([hourly(), sample(BTC_1M)]).unchanged == 4


def test_repeated_key_within_a_call_keeps_the_last_row(repo):
    first = hourly().select(T0_1H, T0_1H + HOUR)
    changed = with_close(first, "7.00", "archive")
    repo.upsert_klines([first, changed])
    assert [str(r["close"]) for r in stored(repo)] == ["7.00"]


def test_ledger_is_written_with_the_rows(repo):
    day = date(2023, 10, 27)
    row = LedgerRow("klines", "BTCUSDT", "1h", day, expected_rows=24, actual_rows=3, status="incomplete",
                    missing=[Gap("1h", T0_1H + 3 * HOUR, T0_1H + 24 * HOUR, EXCHANGE_GAP)],
                    sources={"archive": 3}, archive_checksum="ab" * 32)
    repo.upsert_klines(hourly(), [row])
    [got] = repo.get_ledger("klines", "BTCUSDT", "1h", day, day)
    assert (got.status, got.actual_rows, got.sources, got.repair_attempts) == ("incomplete", 3, {"archive": 3}, 0)
    assert got.missing[0]["cls"] == EXCHANGE_GAP and got.missing[0]["bars"] == 21
    assert got.updated_at.tzinfo is not None
    assert repo.ledger_checksums("klines", "BTCUSDT", "1h", [day, date(2023, 10, 28)]) == {day: "ab" * 32}


def test_failing_batch_leaves_neither_rows_nor_ledger(repo):
    good = hourly()
    bad_line = sample(BTC_1M).csv.replace(b"16537.50", b"16537.5O")  # letter O, not zero
    bad = RawKlines("BTCUSDT", "1m", "archive", bad_line)
    ledger = [LedgerRow("klines", "BTCUSDT", "1h", "2023-10-27", 24, 3, "complete")]
    with pytest.raises(KlineFormatError, match="BTCUSDT 1m"):
        repo.upsert_klines([good, bad], ledger)
    assert repo.count_klines() == 0
    assert repo.get_ledger("klines") == []


@pytest.mark.parametrize("value", ["NaN", "1e5", "", "1.2.3", "--1"])
def test_malformed_numbers_are_refused(repo, value):
    fields = hourly().csv.decode().splitlines()[0].split(",")
    fields[2] = value
    with pytest.raises(KlineFormatError):
        repo.upsert_klines(RawKlines("BTCUSDT", "1h", "archive", (",".join(fields) + "\n").encode()))
    assert repo.count_klines() == 0


def test_bad_labels_are_refused(repo):
    with pytest.raises(InvalidInputError, match="symbol"):
        repo.upsert_klines(RawKlines("btc-usdt", "1h", "archive", hourly().csv))
    with pytest.raises(InvalidInputError, match="interval"):
        repo.upsert_klines(RawKlines("BTCUSDT", "7m", "archive", hourly().csv))
    with pytest.raises(InvalidInputError, match="interval"):
        repo.get_klines("BTCUSDT", "7m", 0, 1)


def test_get_klines_range_order_and_dtypes(repo):
    rows = hourly().csv.decode().splitlines(keepends=True)
    repo.upsert_klines(RawKlines("BTCUSDT", "1h", "archive", "".join(reversed(rows)).encode()))
    frame = repo.get_klines("BTCUSDT", "1h", datetime(2023, 10, 27, 1, tzinfo=UTC), T0_1H + 3 * HOUR)
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert frame["open_time"].dtype == "datetime64[ms, UTC]"
    assert frame["close_time"].dtype == "datetime64[ms, UTC]"
    for column in ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume",
                   "taker_buy_quote_volume"):
        assert frame[column].dtype == "float64", column
    assert frame["trades_count"].dtype == "int64"
    assert frame["open_time"].tolist() == [
        datetime(2023, 10, 27, 1, tzinfo=UTC), datetime(2023, 10, 27, 2, tzinfo=UTC)
    ]  # start included, end excluded, ascending
    assert frame["close_time"].iloc[0] == datetime(2023, 10, 27, 1, 59, 59, 999000, tzinfo=UTC)
    assert frame["open"].tolist() == [34015.27, 33848.47]
    assert (frame["symbol"] == "BTCUSDT").all() and (frame["interval"] == "1h").all()
    # the same frame the validation layer reads from RawKlines
    expected = hourly().frame.iloc[1:].reset_index(drop=True)
    assert frame.reset_index(drop=True).equals(expected)


def test_get_klines_empty_range(repo):
    frame = repo.get_klines("BTCUSDT", "1h", T0_1H, T0_1H + HOUR)
    assert len(frame) == 0
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert frame["open_time"].dtype == "datetime64[ms, UTC]"


def test_find_gaps_and_open_times(repo):
    raw = hourly()
    repo.upsert_klines([raw.select(T0_1H, T0_1H + HOUR), raw.select(T0_1H + 2 * HOUR, T0_1H + 3 * HOUR)])
    times = repo.kline_open_times("BTCUSDT", "1h", T0_1H, T0_1H + 24 * HOUR)
    assert times.dtype == np.int64
    assert times.tolist() == [T0_1H, T0_1H + 2 * HOUR]
    gaps = repo.find_gaps("BTCUSDT", "1h", T0_1H, datetime(2023, 10, 27, 5, tzinfo=UTC))
    assert gaps == [
        Gap("1h", T0_1H + HOUR, T0_1H + 2 * HOUR),
        Gap("1h", T0_1H + 3 * HOUR, T0_1H + 5 * HOUR),
    ]
    assert repo.find_gaps("BTCUSDT", "1h", T0_1H, T0_1H + HOUR) == []


def test_count_and_delete(repo):
    repo.upsert_klines(hourly())
    assert repo.count_klines("BTCUSDT", "1h", T0_1H, T0_1H + 2 * HOUR) == 2
    assert repo.delete_klines("BTCUSDT", "1h", T0_1H + HOUR, T0_1H + 2 * HOUR) == 1
    assert repo.kline_open_times("BTCUSDT", "1h", 0, T0_1H + 99 * HOUR).tolist() == [T0_1H, T0_1H + 2 * HOUR]
    # and a deleted bar comes back as a new row
    assert repo.upsert_klines(hourly()).inserted == 1


def test_ledger_upsert_filters_and_repair_attempts(repo):
    rows = [
        LedgerRow("klines", symbol, "1h", day, 24, 24, "complete", sources={"archive": 24})
        for symbol in ("BTCUSDT", "ETHUSDT") for day in ("2023-10-26", "2023-10-27")
    ]
    assert repo.upsert_ledger(rows) == 4
    assert len(repo.get_ledger("klines")) == 4
    assert [r.day for r in repo.get_ledger("klines", "ETHUSDT", start_day="2023-10-27")] == [date(2023, 10, 27)]
    assert repo.get_ledger("funding") == []
    assert repo.record_repair_attempt("klines", "BTCUSDT", "1h", "2023-10-27", "timeout") == 1
    assert repo.record_repair_attempt("klines", "BTCUSDT", "1h", "2023-10-27", "timeout") == 2
    assert repo.record_repair_attempt("klines", "BTCUSDT", "1h", "2001-01-01") is None
    # a reload without repair_attempts keeps the count; an explicit value replaces it
    repo.upsert_ledger([LedgerRow("klines", "BTCUSDT", "1h", "2023-10-27", 24, 20, "incomplete")])
    [got] = repo.get_ledger("klines", "BTCUSDT", "1h", "2023-10-27", "2023-10-27")
    assert (got.status, got.actual_rows, got.repair_attempts, got.last_error) == ("incomplete", 20, 2, None)
    repo.upsert_ledger([LedgerRow("klines", "BTCUSDT", "1h", "2023-10-27", 24, 24, "complete", repair_attempts=0)])
    assert repo.get_ledger("klines", "BTCUSDT", "1h", "2023-10-27", "2023-10-27")[0].repair_attempts == 0


def test_ledger_row_refuses_unknown_status():
    with pytest.raises(InvalidInputError, match="status"):
        LedgerRow("klines", "BTCUSDT", "1h", "2023-10-27", 24, 24, "done")
