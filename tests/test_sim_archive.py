"""Simulator archive: zips equal REST, headers by date, checksums, publication times, listing, outages."""

from __future__ import annotations

import hashlib
import io
import xml.etree.ElementTree as ET
import zipfile

import httpx
import pytest

from marketdata_assets.binance.klines import raw_klines_from_csv, raw_klines_from_rest
from marketdata_sim.symbols import utc_ms
from tests.support.samples import SAMPLES as SAMPLES_ROOT

SAMPLES = SAMPLES_ROOT / "archive"
NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
KLINES = "/data/futures/um/daily/klines"


@pytest.fixture
def client(sim_session) -> httpx.Client:
    with httpx.Client(base_url=sim_session.url, timeout=30) as c:
        yield c


def _member(data: bytes) -> tuple[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        (name,) = zf.namelist()
        return name, zf.read(name)


def test_daily_zip_equals_rest_and_matches_real_layout(client: httpx.Client) -> None:
    r = client.get(f"{KLINES}/BTCUSDT/1m/BTCUSDT-1m-2023-01-01.zip")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    name, csv = _member(r.content)
    assert name == "BTCUSDT-1m-2023-01-01.csv"
    real = (SAMPLES / "um_klines_1m_BTCUSDT_2023-01-01_header_plus_first_row.csv").read_bytes().splitlines()
    lines = csv.splitlines()
    assert lines[0] == real[0]  # same header
    assert [len(f.partition(b".")[2]) for f in lines[1].split(b",")] == [
        len(f.partition(b".")[2]) for f in real[1].split(b",")]
    assert lines[1].startswith(b"1672531200000,")
    raw = raw_klines_from_csv(csv, "BTCUSDT", "1m")
    assert len(raw) == 1440
    rest = client.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1440,
                                                  "startTime": utc_ms("2023-01-01")}).json()
    assert raw.csv == raw_klines_from_rest(rest, "BTCUSDT", "1m", source="archive").csv


def test_header_only_from_2022_09_01(client: httpx.Client) -> None:
    _, old = _member(client.get(f"{KLINES}/ETHUSDT/1h/ETHUSDT-1h-2022-08-31.zip").content)
    _, new = _member(client.get(f"{KLINES}/ETHUSDT/1h/ETHUSDT-1h-2022-09-01.zip").content)
    assert old[:1].isdigit() and len(old.splitlines()) == 24
    assert new.startswith(b"open_time,") and len(new.splitlines()) == 25


def test_checksum_format_and_verification(client: httpx.Client) -> None:
    key = f"{KLINES}/SOLUSDT/5m/SOLUSDT-5m-2024-03-01.zip"
    data = client.get(key).content
    text = client.get(key + ".CHECKSUM").content
    real = (SAMPLES / "CHECKSUM_real_BTCUSDT-1m-2025-04-11.zip.CHECKSUM").read_bytes()
    assert not text.endswith(b"\n") and text.count(b"  ") == 1 == real.count(b"  ")
    digest, name = text.decode().split("  ")
    assert name == "SOLUSDT-5m-2024-03-01.zip" and digest == hashlib.sha256(data).hexdigest()
    assert client.get(key).content == data  # cached bytes, same checksum


def test_outage_rows_missing_in_archive_like_rest(client: httpx.Client) -> None:
    _, csv = _member(client.get(f"{KLINES}/BTCUSDT/1m/BTCUSDT-1m-2024-02-10.zip").content)
    raw = raw_klines_from_csv(csv, "BTCUSDT", "1m")
    assert len(raw) == 1440 - 25
    assert utc_ms("2024-02-10 06:35") not in raw.open_times_ms and utc_ms("2024-02-10 06:34") in raw.open_times_ms


def test_daily_file_published_at_d_plus_1_0830(sim) -> None:
    key = f"{KLINES}/BTCUSDT/1m/BTCUSDT-1m-2024-03-10.zip"
    with httpx.Client(base_url=sim.url) as c:
        sim.set_now("2024-03-11T08:29:59Z")
        r = c.get(key)
        assert r.status_code == 404 and b"<Code>NoSuchKey</Code>" in r.content
        assert c.get(key + ".CHECKSUM").status_code == 404
        sim.set_now("2024-03-11T08:30:00Z")
        assert c.get(key).status_code == 200
        # monthly: after the first Monday of the next month (2024-04-01 is a Monday)
        month = "/data/futures/um/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-03.zip"
        sim.set_now("2024-03-31T23:00:00Z")
        assert c.get(month).status_code == 404
        sim.set_now("2024-04-01T09:00:00Z")
        _, csv = _member(c.get(month).content)
        assert len(csv.splitlines()) == 31 + 1
        assert sim.stats()["total_weight"] == 0  # archive traffic costs no REST weight


def test_files_outside_listing_life_do_not_exist(client: httpx.Client) -> None:
    assert client.get(f"{KLINES}/NEWUSDT/1m/NEWUSDT-1m-2024-02-14.zip").status_code == 404
    _, first = _member(client.get(f"{KLINES}/NEWUSDT/1m/NEWUSDT-1m-2024-02-15.zip").content)
    assert len(raw_klines_from_csv(first, "NEWUSDT", "1m")) == 16 * 60
    assert client.get(f"{KLINES}/OLDUSDT/1m/OLDUSDT-1m-2024-02-21.zip").status_code == 404
    gone = client.get(f"{KLINES}/GONEUSDT/1d/GONEUSDT-1d-2022-01-05.zip")  # removed from REST, archive stays
    assert gone.status_code == 200


@pytest.mark.parametrize(("key", "header"), [
    ("/data/futures/um/daily/aggTrades/NEWUSDT/NEWUSDT-aggTrades-2024-03-01.zip",
     "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"),
    ("/data/futures/um/monthly/fundingRate/SOLUSDT/SOLUSDT-fundingRate-2024-01.zip",
     "calc_time,funding_interval_hours,last_funding_rate"),
    ("/data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-03-01.zip", None),
    ("/data/futures/um/daily/bookDepth/BTCUSDT/BTCUSDT-bookDepth-2024-03-01.zip", None),
    ("/data/futures/um/daily/markPriceKlines/ETHUSDT/1h/ETHUSDT-1h-2024-03-01.zip", None),
])
def test_other_families(client: httpx.Client, key: str, header: str | None) -> None:
    r = client.get(key)
    assert r.status_code == 200, key
    _, csv = _member(r.content)
    first = csv.split(b"\n", 1)[0].decode()
    if header is None:
        sample = {"metrics": "um_metrics_BTCUSDT_2026-09-12_header_plus_first_row.csv",
                  "bookDepth": "um_bookDepth_BTCUSDT_2026-09-12_header_plus_rows.csv"}
        family = key.split("/")[5]
        header = ((SAMPLES / sample[family]).read_text().splitlines()[0] if family in sample
                  else "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                       "taker_buy_quote_volume,ignore")
    assert first == header
    data_row = csv.split(b"\n")[1].split(b",")
    assert len(data_row) == len(header.split(","))
    if "fundingRate" in key:  # SOLUSDT switched to 4 h funding in 2023-10
        assert data_row[1] == b"4"


def test_s3_listing_with_paging(client: httpx.Client) -> None:
    prefix = "data/futures/um/daily/klines/BTCUSDT/1m/"
    keys: list[str] = []
    marker = ""
    pages = 0
    while True:
        params = {"delimiter": "/", "prefix": prefix, "max-keys": 500}
        if marker:
            params["marker"] = marker
        root = ET.fromstring(client.get("/data.binance.vision", params=params).content)
        assert root.tag == "{http://s3.amazonaws.com/doc/2006-03-01/}ListBucketResult"
        page = [e.text for e in root.findall("s3:Contents/s3:Key", NS)]
        keys += page
        pages += 1
        if root.find("s3:IsTruncated", NS).text != "true":
            break
        marker = root.find("s3:NextMarker", NS).text
        assert marker == page[-1]
    assert pages > 1 and keys == sorted(keys) and len(keys) == len(set(keys))
    assert keys[0] == prefix + "BTCUSDT-1m-2019-09-25.zip"
    assert keys[-1] == prefix + "BTCUSDT-1m-2024-04-01.zip.CHECKSUM"  # 04-02 not settled yet
    root = ET.fromstring(client.get("/data.binance.vision", params={
        "delimiter": "/", "prefix": "data/futures/um/daily/klines/"}).content)
    symbols = [e.text for e in root.findall("s3:CommonPrefixes/s3:Prefix", NS)]
    assert "data/futures/um/daily/klines/BTCUSDT/" in symbols and "data/futures/um/daily/klines/GONEUSDT/" in symbols
    contents = root.findall("s3:Contents", NS)
    assert contents == []
    one = ET.fromstring(client.get("/data.binance.vision", params={
        "delimiter": "/", "prefix": prefix, "max-keys": 1}).content)
    entry = one.find("s3:Contents", NS)
    assert {c.tag.split("}")[1] for c in entry} >= {"Key", "LastModified", "Size"}
    modified = entry.find("s3:LastModified", NS).text
    assert "2019-09-26T08:30:00.000Z" <= modified <= "2019-09-26T09:10:00.000Z"
