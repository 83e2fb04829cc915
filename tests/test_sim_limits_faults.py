"""Simulator rate limits (weight window, 429 -> 418) and fault switches, over real loopback HTTP."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from marketdata_sim import SimServer

NOW = "2024-04-02T12:00:10Z"
KLINES = {"symbol": "BTCUSDT", "interval": "1m", "limit": 5}  # weight 1
ZIP = "/data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-01.zip"


@pytest.fixture
def limited():
    """Weight windows driven by the frozen market clock: no dependence on real minute boundaries."""
    with SimServer(now=NOW, weight_limit=10, ban_after=2, ban_ms=30_000, rate_clock="market") as server:
        yield server


def test_weight_header_429_then_418_ban_then_recovery(limited: SimServer) -> None:
    with httpx.Client(base_url=limited.url) as c:
        for i in range(1, 11):
            r = c.get("/fapi/v1/klines", params=KLINES)
            assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == str(i)
        r = c.get("/fapi/v1/klines", params=KLINES)
        assert r.status_code == 429
        assert r.json()["code"] == -1003
        assert r.json()["msg"].startswith("Too many requests; current limit is 10 requests per minute.")
        assert r.headers["Retry-After"] == "50"  # seconds to the end of the minute window
        assert [c.get("/fapi/v1/ping").status_code for _ in range(2)] == [429, 429]  # ban_after=2 more
        r = c.get("/fapi/v1/ping")
        assert r.status_code == 418
        banned_until = int(r.json()["msg"].split("banned until ")[1].split(".")[0])
        assert r.json()["msg"].startswith("Way too many requests; IP(127.0.0.1) banned until")
        assert banned_until == limited.market.now_ms + 30_000 and r.headers["Retry-After"] == "30"
        limited.market.advance(20_000)  # still banned
        assert c.get("/fapi/v1/ping").status_code == 418
        limited.market.advance(40_000)  # ban over, new window
        assert c.get("/fapi/v1/ping").status_code == 200
        stats = limited.stats()
        assert stats["count_429"] == 3 and stats["count_418"] == 2
        assert stats["max_window_weight"] == 14  # rejected requests count too, until the ban
        assert stats["requests"]["/fapi/v1/klines"] == 11


def test_window_resets_each_minute(limited: SimServer) -> None:
    with httpx.Client(base_url=limited.url) as c:
        for _ in range(10):
            assert c.get("/fapi/v1/klines", params=KLINES).status_code == 200
        limited.market.advance(50_000)  # 12:01:00, a new window
        r = c.get("/fapi/v1/klines", params=KLINES)
        assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        assert limited.stats()["total_weight"] == 11 and limited.stats()["max_window_weight"] == 10


def test_funding_rate_has_its_own_limit(limited: SimServer) -> None:
    limited.set_limits(funding_limit=2, weight_limit=1000)
    with httpx.Client(base_url=limited.url) as c:
        codes = [c.get("/fapi/v1/fundingRate", params={"symbol": "BTCUSDT"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert c.get("/fapi/v1/ping").status_code == 200  # the weight budget is untouched


def test_error_burst(sim) -> None:
    sim.set_faults(error_burst={"count": 2, "status": 503})
    with httpx.Client(base_url=sim.url) as c:
        first = c.get("/fapi/v1/klines", params=KLINES)
        assert first.status_code == 503 and first.json()["msg"] == "Service Unavailable."
        assert c.get("/fapi/v1/time").status_code == 503
        assert c.get("/fapi/v1/time").status_code == 200
        r = c.post("/_sim/faults", json={"error_burst": {"count": 1, "status": 500, "prefix": "/data/"}})
        assert r.status_code == 200
        assert c.get("/fapi/v1/time").status_code == 200
        assert c.get(ZIP).status_code == 500
        assert c.get(ZIP).status_code == 200
    assert sim.stats()["status_counts"]["503"] == 2


def test_delay_makes_client_time_out(sim) -> None:
    sim.set_faults(delay={"ms": 2000, "count": 1, "prefix": "/fapi/v1/klines"})
    with httpx.Client(base_url=sim.url, timeout=0.2) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get("/fapi/v1/klines", params=KLINES)
        assert c.get("/fapi/v1/klines", params=KLINES).status_code == 200


def test_hang_never_answers(sim) -> None:
    sim.set_faults(hang={"count": 1})
    with httpx.Client(base_url=sim.url, timeout=0.3) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get("/fapi/v1/ping")
        assert c.get("/fapi/v1/ping").status_code == 200


def test_corrupt_truncated_and_missing_archive_files(sim) -> None:
    import hashlib

    day2 = ZIP.replace("03-01", "03-02")
    day3 = ZIP.replace("03-01", "03-03")
    with httpx.Client(base_url=sim.url) as c:
        good = c.get(ZIP).content
        r = c.post("/_sim/faults", json={"corrupt": [ZIP], "truncated": [day2], "missing": [day3]})
        assert r.status_code == 200
        bad = c.get(ZIP).content
        digest = c.get(ZIP + ".CHECKSUM").text.split("  ")[0]
        assert len(bad) == len(good) and bad != good
        assert digest == hashlib.sha256(good).hexdigest() != hashlib.sha256(bad).hexdigest()
        cut = c.get(day2).content
        assert c.get(day2 + ".CHECKSUM").text.split("  ")[0] == hashlib.sha256(cut).hexdigest()
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(cut)).testzip()
        assert c.get(day3).status_code == 404 and c.get(day3 + ".CHECKSUM").status_code == 404
        c.post("/_sim/faults", json={"clear": True})
        assert c.get(ZIP).content == good


def test_control_api_clock_reset_and_outages(sim) -> None:
    with httpx.Client(base_url=sim.url) as c:
        assert c.get("/_sim/clock").json() == {"now_ms": 1712059200000, "frozen": True}
        assert c.post("/_sim/clock", json={"advance_ms": 60_000}).json()["now_ms"] == 1712059260000
        assert c.get("/fapi/v1/time").json()["serverTime"] == 1712059260000
        c.post("/_sim/clock", json={"now": "2024-03-01T00:00:00Z"})
        assert c.get("/fapi/v1/time").json()["serverTime"] == 1709251200000
        c.post("/_sim/outages", json={"outages": [[1709164800000, 1709164860000, ["ETHUSDT"]]]})
        rows = c.get("/fapi/v1/klines", params={"symbol": "ETHUSDT", "interval": "1m",
                                                "startTime": 1709164740000, "limit": 3}).json()
        assert [r[0] for r in rows] == [1709164740000, 1709164860000, 1709164920000]
        c.post("/_sim/outages", json={"outages": []})
        assert c.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m",
                                                 "startTime": 1707546900000, "limit": 1}).json()[0][0] == 1707546900000
        assert sim.stats()["total_weight"] > 0
        c.post("/_sim/reset")
        assert sim.stats()["total_weight"] == 0
        r = c.post("/_sim/limits", json={"weight_limit": 5})
        assert r.json()["weight_limit"] == 5
        assert c.post("/_sim/prewarm", json={"symbol": "BTCUSDT", "interval": "1m", "start": "2024-01-01",
                                             "end": "2024-01-03"}).json() == {"built": 3}
