"""ArchiveClient: URL layout, .CHECKSUM and zip handling, S3 listing; real samples wherever they exist.

The parts that need a server run against the simulator (`sim` fixture) further down.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from marketdata_assets.binance.archive import (
    ArchiveClient,
    archive_path,
    parse_checksum,
    parse_listing,
    unzip_single_csv,
)
from marketdata_assets.binance.errors import ArchiveError, ChecksumMismatchError, CorruptArchiveError
from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.binance.klines import raw_klines_from_csv
from marketdata_assets.settings import Settings

SAMPLES = Path("/work/shared/binance/samples/archive")


# ---------------------------------------------------------------- layout (SPEC C.1)

@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (("klines", "BTCUSDT", "2024-01-15", "1m"), {},
         "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-15.zip"),
        (("klines", "BTCUSDT", "2024-01", "1m"), {"period": "monthly"},
         "data/futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip"),
        (("klines", "BTCUSDT", date(2024, 1, 31), "1M"), {"period": "monthly"},
         "data/futures/um/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2024-01.zip"),
        (("markPriceKlines", "ETHUSDT", date(2023, 5, 2), "5m"), {},
         "data/futures/um/daily/markPriceKlines/ETHUSDT/5m/ETHUSDT-5m-2023-05-02.zip"),
        (("indexPriceKlines", "BTCUSDT", "2022-07-12", "1m"), {},
         "data/futures/um/daily/indexPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2022-07-12.zip"),
        (("premiumIndexKlines", "SOLUSDT", "2026-01-01", "1h"), {},
         "data/futures/um/daily/premiumIndexKlines/SOLUSDT/1h/SOLUSDT-1h-2026-01-01.zip"),
        (("aggTrades", "BTCUSDT", "2023-05"), {"period": "monthly"},
         "data/futures/um/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2023-05.zip"),
        (("aggTrades", "BTCUSDT", "2023-05-01"), {},
         "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2023-05-01.zip"),
        (("trades", "SOLUSDT", "2026-01-01"), {},
         "data/futures/um/daily/trades/SOLUSDT/SOLUSDT-trades-2026-01-01.zip"),
        (("bookTicker", "BTCUSDT", "2024-03-30"), {},
         "data/futures/um/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-03-30.zip"),
        (("metrics", "BTCUSDT", "2026-09-12"), {},
         "data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2026-09-12.zip"),
        (("bookDepth", "BTCUSDT", "2026-09-12"), {},
         "data/futures/um/daily/bookDepth/BTCUSDT/BTCUSDT-bookDepth-2026-09-12.zip"),
        (("fundingRate", "BTCUSDT", "2024-02"), {"period": "monthly"},
         "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-02.zip"),
        (("klines", "BTCUSDT_250627", "2025-01-02", "1h"), {},
         "data/futures/um/daily/klines/BTCUSDT_250627/1h/BTCUSDT_250627-1h-2025-01-02.zip"),
        (("klines", "BTCUSD_PERP", "2023-10-27", "1h"), {"market": "cm"},
         "data/futures/cm/daily/klines/BTCUSD_PERP/1h/BTCUSD_PERP-1h-2023-10-27.zip"),
    ],
)
def test_archive_path_layout(args, kwargs, expected):
    assert archive_path(*args, **kwargs) == expected


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("fundingRate", "BTCUSDT", "2024-02-01"), {}, "monthly only"),
        (("metrics", "BTCUSDT", "2024-02"), {"period": "monthly"}, "daily only"),
        (("bookDepth", "BTCUSDT", "2024-02"), {"period": "monthly"}, "daily only"),
        (("klines", "BTCUSDT", "2024-02-01"), {}, "needs an interval"),
        (("klines", "BTCUSDT", "2024-02-01", "1w"), {}, "'1w' has no daily"),
        (("klines", "BTCUSDT", "2024-02-01", "1s"), {}, "'1s'"),
        (("aggTrades", "BTCUSDT", "2024-02-01", "1m"), {}, "no interval"),
        (("liquidationSnapshot", "BTCUSDT", "2024-02-01"), {}, "liquidationSnapshot"),
        (("klines", "btcusdt", "2024-02-01", "1m"), {}, "btcusdt"),
        (("klines", "BTCUSDT", "2024-13-01", "1m"), {}, "2024-13-01"),
        (("klines", "BTCUSDT", "2024-13", "1m"), {"period": "monthly"}, "2024-13"),
        (("klines", "BTCUSDT", "2024-02-01", "1m"), {"period": "weekly"}, "weekly"),
        (("klines", "BTCUSDT", "2024-02-01", "1m"), {"market": "spot"}, "spot"),
    ],
)
def test_archive_path_refuses_what_does_not_exist(args, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        archive_path(*args, **kwargs)


# ---------------------------------------------------------------- .CHECKSUM (SPEC C.2)

def test_parse_real_checksum_file_without_trailing_newline():
    raw = (SAMPLES / "CHECKSUM_real_BTCUSDT-1m-2025-04-11.zip.CHECKSUM").read_bytes()
    path = "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-04-11.zip"
    assert parse_checksum(raw.rstrip(b"\n"), path) == \
        "2f79af36e0ab40e450368ff23a8970072bf205f01ee2af460268177068e4bc98"
    assert parse_checksum(raw.rstrip(b"\n") + b"\n", path) == parse_checksum(raw, path)


def test_parse_real_checksum_lines():
    lines = [
        line for line in (SAMPLES / "CHECKSUM_lines_real_examples.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(lines) == 4
    for line in lines:
        digest, name = line.split("  ")
        assert parse_checksum(line, f"some/prefix/{name}") == digest


def test_checksum_for_another_file_or_garbage_is_corrupt():
    line = (SAMPLES / "CHECKSUM_real_BTCUSDT-1m-2025-04-11.zip.CHECKSUM").read_text()
    with pytest.raises(CorruptArchiveError, match="BTCUSDT-1m-2025-04-12.zip.CHECKSUM"):
        parse_checksum(line, "data/x/BTCUSDT-1m-2025-04-12.zip")
    with pytest.raises(CorruptArchiveError, match="not a sha256sum line"):
        parse_checksum(b"<html>Not found</html>", "data/x/BTCUSDT-1m-2025-04-12.zip")


# ---------------------------------------------------------------- zip (SPEC C.2, C.3)

def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_unzip_real_kline_csv_with_header():
    csv = (SAMPLES / "um_klines_1m_BTCUSDT_2023-01-01_header_plus_first_row.csv").read_bytes()
    data = unzip_single_csv(make_zip({"BTCUSDT-1m-2023-01-01.csv": csv}), "x.zip")
    raw = raw_klines_from_csv(data, "BTCUSDT", "1m")
    assert raw.open_times_ms == [1672531200000]
    assert raw.text_rows()[0][1:5] == ("16537.50", "16538.00", "16534.30", "16538.00")


def test_unzip_refuses_corrupt_and_multi_member_zips():
    good = make_zip({"a.csv": b"1,2\n" * 100})
    with pytest.raises(CorruptArchiveError, match="unreadable zip"):
        unzip_single_csv(good[: len(good) // 2], "data/a.zip")
    with pytest.raises(CorruptArchiveError, match="data/b.zip: unreadable zip"):
        unzip_single_csv(b"<html>oops</html>", "data/b.zip")
    with pytest.raises(CorruptArchiveError, match="found 2"):
        unzip_single_csv(make_zip({"a.csv": b"1", "b.csv": b"2"}), "data/c.zip")
    flipped = bytearray(good)
    flipped[40] ^= 0xFF  # inside the compressed data: a CRC or inflate error
    with pytest.raises(CorruptArchiveError):
        unzip_single_csv(bytes(flipped), "data/d.zip")


def test_checksum_mismatch_message_names_file_and_both_digests():
    error = ChecksumMismatchError("data/x/BTCUSDT-1m-2024-01-15.zip", "a" * 64, "b" * 64)
    assert "BTCUSDT-1m-2024-01-15.zip" in str(error)
    assert "a" * 64 in str(error) and "b" * 64 in str(error)


# ---------------------------------------------------------------- S3 listing (SPEC C.4)

LISTING_PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>data.binance.vision</Name>\
<Prefix>data/futures/um/daily/klines/BTCUSDT/1m/</Prefix><Marker></Marker>\
<NextMarker>data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-10-05.zip.CHECKSUM</NextMarker>\
<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>\
<Contents><Key>data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-10-05.zip</Key>\
<LastModified>2025-10-06T08:32:57.000Z</LastModified><ETag>&quot;6e0f&quot;</ETag><Size>61234</Size>\
<StorageClass>STANDARD</StorageClass></Contents>\
<Contents><Key>data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-10-05.zip.CHECKSUM</Key>\
<LastModified>2025-10-06T08:32:58.000Z</LastModified><ETag>&quot;77aa&quot;</ETag><Size>91</Size>\
<StorageClass>STANDARD</StorageClass></Contents>\
<CommonPrefixes><Prefix>data/futures/um/daily/klines/BTCUSDT/1m/sub/</Prefix></CommonPrefixes>\
</ListBucketResult>"""


def test_parse_listing_page():
    page = parse_listing(LISTING_PAGE)
    assert page.is_truncated
    assert page.next_marker.endswith("2025-10-05.zip.CHECKSUM")
    assert [k.size for k in page.keys] == [61234, 91]
    assert page.keys[0].last_modified == datetime(2025, 10, 6, 8, 32, 57, tzinfo=UTC)
    assert page.prefixes == ["data/futures/um/daily/klines/BTCUSDT/1m/sub/"]


def test_parse_listing_without_namespace_and_refuses_html():
    page = parse_listing("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
    assert (page.keys, page.prefixes, page.is_truncated) == ([], [], False)
    with pytest.raises(ArchiveError, match="not XML"):
        parse_listing(b"<!DOCTYPE html><html><body><script>")
    with pytest.raises(ArchiveError, match="unexpected root"):
        parse_listing(b"<Error><Code>AccessDenied</Code></Error>")


def test_from_settings_uses_the_configured_urls():
    settings = Settings.from_env({"BINANCE_ARCHIVE_URL": "http://127.0.0.1:9/arch/",
                                  "BINANCE_ARCHIVE_LISTING_URL": "http://127.0.0.1:9/list"})
    with ArchiveClient.from_settings(settings) as client:
        assert client.base_url == "http://127.0.0.1:9/arch"
        assert client.listing_url == "http://127.0.0.1:9/list"
    default = ArchiveClient()
    assert default.listing_url == "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
    default.close()
