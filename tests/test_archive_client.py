"""ArchiveClient: URL layout, .CHECKSUM and zip handling, S3 listing; real samples wherever they exist.

The parts that need a server run against the simulator (`sim` fixture) further down.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, date, datetime

import httpx
import pytest

from marketdata_assets.binance.archive import (
    ArchiveClient,
    archive_path,
    csv_size_limit,
    parse_checksum,
    parse_listing,
    unzip_single_csv,
)
from marketdata_assets.binance.errors import (
    ArchiveError,
    BinanceServerError,
    BinanceUnavailableError,
    ChecksumMismatchError,
    CorruptArchiveError,
)
from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.binance.klines import raw_klines_from_csv, raw_klines_from_rest
from marketdata_assets.settings import Settings
from tests.support.samples import SAMPLES as SAMPLES_ROOT

SAMPLES = SAMPLES_ROOT / "archive"


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


def test_a_zip_inflating_beyond_what_its_file_may_hold_is_refused_without_reading_it_all():
    """A day of 1m klines is at most ~430 KB of CSV here; a 2 MB (or lying) member is a zip bomb, refused."""
    path = "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-15.zip"
    assert 1440 * 90 < csv_size_limit(path) < 1024 * 1024
    assert csv_size_limit("data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-15.zip") >= 500 * 2**20
    bomb = make_zip({"BTCUSDT-1m-2024-01-15.csv": b"0" * (2 * 1024 * 1024)})
    assert len(bomb) < 20_000
    with pytest.raises(CorruptArchiveError, match=r"BTCUSDT-1m-2024-01-15.zip: declares 2,097,152 bytes"):
        unzip_single_csv(bomb, path)
    # a member whose header understates its size: zipfile stops at the stated size, the CRC then fails
    with pytest.raises(CorruptArchiveError, match="unreadable zip"):
        _unzip_lying(make_zip({"a.csv": b"1,2\n" * 10_000}), path)
    real = (SAMPLES / "um_klines_1m_BTCUSDT_2023-01-01_header_plus_first_row.csv").read_bytes()
    assert unzip_single_csv(make_zip({"BTCUSDT-1m-2023-01-01.csv": real}), path) == real


def _unzip_lying(data: bytes, path: str) -> bytes:
    """unzip_single_csv of `data` whose member header claims 10 bytes (local and central directory)."""
    import struct

    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    struct.pack_into("<I", patched, local + 22, 10)  # uncompressed size in the local header
    central = patched.find(b"PK\x01\x02")
    struct.pack_into("<I", patched, central + 24, 10)  # and in the central directory
    return unzip_single_csv(bytes(patched), path, limit=1_000)


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


# ================================================================ against the simulator

def sim_archive(server, **kwargs) -> tuple[ArchiveClient, list[float]]:
    sleeps: list[float] = []
    client = ArchiveClient(server.url, server.url + "/data.binance.vision", sleep=sleeps.append, **kwargs)
    return client, sleeps


def rest_truth(server, symbol: str, interval: str, day: date, kind: str = "trade") -> bytes:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    market = server.market
    bars = market.klines(symbol, interval, start, start + 86_400_000 - 1, limit=100_000, kind=kind)
    return raw_klines_from_rest(market.kline_rest_rows(market.spec(symbol), interval, bars, kind),
                                symbol, interval).csv


@pytest.mark.parametrize(
    ("day", "interval", "rows"),
    [
        (date(2024, 2, 10), "1m", 1440 - 25),  # the outage day: the archive has the same hole as REST
        (date(2024, 3, 1), "5m", 288),  # a file with a header row
        (date(2022, 6, 15), "1m", 1440),  # an older file without a header row (SPEC C.3)
    ],
)
def test_daily_klines_match_rest_and_checksum(sim_session, day, interval, rows):
    client, _ = sim_archive(sim_session)
    with client:
        got = client.daily_klines("BTCUSDT", interval, day)
        path = client.archive_path("klines", "BTCUSDT", day, interval=interval)
        published = client.fetch_checksum(path)
        has_header = client.fetch(path).csv_bytes.startswith(b"open_time,")
        with httpx.Client() as http:
            zipped = http.get(f"{sim_session.url}/{path}").content
    assert got is not None
    raw, digest = got
    assert len(raw) == rows and raw.source == "archive"
    assert raw.csv == rest_truth(sim_session, "BTCUSDT", interval, day)
    assert digest == published == hashlib.sha256(zipped).hexdigest()
    assert has_header == (day >= date(2022, 9, 1))


def test_mark_price_klines_and_monthly_funding_file(sim_session):
    client, _ = sim_archive(sim_session)
    with client:
        mark = client.daily_klines("ETHUSDT", "1h", "2024-03-01", kind="markPriceKlines")
        funding = client.fetch(archive_path("fundingRate", "BTCUSDT", "2024-02", period="monthly"))
    assert mark is not None and mark[0].csv == rest_truth(sim_session, "ETHUSDT", "1h", date(2024, 3, 1), "mark")
    assert funding is not None
    lines = funding.csv_bytes.decode().splitlines()
    assert lines[0] == (SAMPLES / "um_fundingRate_monthly_HEADER_ONLY.csv").read_text().strip()
    assert len(lines) == 1 + 29 * 3  # February 2024, every 8 h


def test_unpublished_and_missing_files_are_none(sim):
    client, _ = sim_archive(sim)
    today = client.archive_path("klines", "BTCUSDT", "2024-04-02", interval="1m")  # sim now: 04-02 12:00
    missing = client.archive_path("klines", "BTCUSDT", "2024-03-05", interval="1m")
    sim.set_faults(missing=[missing])
    with client:
        assert client.fetch_checksum(today) is None
        assert client.fetch(today) is None
        assert client.daily_klines("BTCUSDT", "1m", "2024-04-02") is None
        assert client.fetch(missing) is None
        assert client.fetch_checksum(client.archive_path("klines", "BTCUSDT", "2024-04-01", interval="1m"))
        assert client.fetch(archive_path("klines", "BTCUSDT", "2018-01-01", "1m")) is None  # before listing


def test_checksum_mismatch_never_returns_data(sim):
    client, _ = sim_archive(sim)
    path = client.archive_path("klines", "BTCUSDT", "2024-03-02", interval="1m")
    sim.set_faults(corrupt=[path])
    with client, pytest.raises(ChecksumMismatchError) as info:
        client.daily_klines("BTCUSDT", "1m", "2024-03-02")
    error = info.value
    assert error.path == path and "BTCUSDT-1m-2024-03-02.zip" in str(error)
    assert error.expected != error.actual and error.expected in str(error) and error.actual in str(error)


def test_truncated_zip_is_corrupt(sim):
    client, _ = sim_archive(sim)
    path = client.archive_path("klines", "BTCUSDT", "2024-03-03", interval="1m")
    sim.set_faults(truncated=[path])  # the .CHECKSUM matches the cut bytes: only unzipping can tell
    with client, pytest.raises(CorruptArchiveError, match="BTCUSDT-1m-2024-03-03.zip: unreadable zip"):
        client.fetch(path)


def test_archive_5xx_burst_is_retried_and_persistent_5xx_raises(sim):
    client, sleeps = sim_archive(sim, max_retries=3)
    sim.set_faults(error_burst={"count": 2, "status": 503, "prefix": "/data/"})
    with client:
        assert client.daily_klines("SOLUSDT", "1h", "2024-03-01") is not None
        assert len(sleeps) == 2 and all(0 <= s <= 10 for s in sleeps)
        sim.set_faults(error_burst={"count": 10, "status": 500, "prefix": "/data/"})
        with pytest.raises(BinanceServerError, match="after 4 attempts"):
            client.fetch_checksum(client.archive_path("klines", "SOLUSDT", "2024-03-02", interval="1h"))


def test_archive_timeouts_raise_unavailable(sim):
    client, sleeps = sim_archive(sim, timeout=0.1, max_retries=1)
    sim.set_faults(delay={"ms": 400, "prefix": "/data/"})
    with client, pytest.raises(BinanceUnavailableError, match="no answer after 2 attempts"):
        client.fetch_checksum(client.archive_path("klines", "SOLUSDT", "2024-03-02", interval="1h"))
    assert len(sleeps) == 1


def test_listing_follows_markers_over_many_pages(sim_session):
    client, _ = sim_archive(sim_session)
    prefix = "data/futures/um/daily/klines/BTCUSDT/1m/"
    before = sim_session.stats()["archive_requests"]
    with client:
        keys = client.list_keys(prefix)
        prefixes = client.list_prefixes("data/futures/um/daily/klines/")
        intervals = client.list_prefixes("data/futures/um/daily/klines/BTCUSDT/")
    pages = sim_session.stats()["archive_requests"] - before
    names = [k.key for k in keys]
    days = (date(2024, 4, 1) - date(2019, 9, 25)).days + 1  # listing day .. yesterday (published 08:30)
    assert len(names) == 2 * days and len(set(names)) == len(names) and names == sorted(names)
    assert names[0] == prefix + "BTCUSDT-1m-2019-09-25.zip"
    assert names[-1] == prefix + "BTCUSDT-1m-2024-04-01.zip.CHECKSUM"
    assert pages >= 4 + 2  # 3302 keys at 1000 per page, plus the two prefix listings
    assert all(k.size > 0 and k.last_modified is not None for k in keys)
    assert next(k for k in keys if k.key.endswith(".CHECKSUM")).size == 91
    assert prefix[:-len("BTCUSDT/1m/")] + "BTCUSDT/" in prefixes and len(prefixes) == 6
    assert prefix[:-len("1m/")] + "1m/" in intervals
