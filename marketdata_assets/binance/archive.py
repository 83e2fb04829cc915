"""ArchiveClient: data.binance.vision files (zip + sha256 .CHECKSUM) and the bucket's S3 XML listing (SPEC C).

Why checksums first: archived files are mutable ("may be updated at a later date"), so a loader pins the
checksum of what it stored and skips a day only when the published checksum is unchanged; and data whose
sha256 does not match is never returned. A 404 is not an error: the file is not published yet.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import httpx

from marketdata_assets.binance.breaker import shared_breaker
from marketdata_assets.binance.errors import (
    ArchiveError,
    ChecksumMismatchError,
    CorruptArchiveError,
    error_from_response,
)
from marketdata_assets.binance.intervals import DAY_MS, INTERVAL_MS, InvalidInputError, parse_day, validate_symbol
from marketdata_assets.binance.kline_kinds import KLINE_KINDS
from marketdata_assets.binance.klines import RawKlines, raw_klines_from_csv
from marketdata_assets.binance.ratelimit import Sleep
from marketdata_assets.binance.retry import RetryPolicy, get_with_retries
from marketdata_assets.binance.tls import tls_for

if TYPE_CHECKING:
    from marketdata_assets.settings import Settings

__all__ = [
    "ARCHIVE_URL", "LISTING_URL", "ArchiveClient", "ArchiveFile", "ArchiveKey", "ChecksumMismatchError",
    "CorruptArchiveError", "archive_path", "parse_checksum", "parse_listing",
]

ARCHIVE_URL = "https://data.binance.vision"
LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"

KLINE_DATA_TYPES = tuple(KLINE_KINDS)
PLAIN_DATA_TYPES = ("aggTrades", "trades", "bookTicker", "metrics", "bookDepth", "fundingRate")
DATA_TYPES = KLINE_DATA_TYPES + PLAIN_DATA_TYPES
DAILY_ONLY = frozenset({"metrics", "bookDepth"})
MONTHLY_ONLY = frozenset({"fundingRate"})
PERIODS = ("daily", "monthly")
MARKETS = ("um", "cm")
# Archive interval folders: daily files stop at 1d; monthly ones add 3d, 1w and 1mo (1M on REST).
DAILY_ARCHIVE_INTERVALS = tuple(INTERVAL_MS)
MONTHLY_ARCHIVE_INTERVALS = (*INTERVAL_MS, "3d", "1w", "1mo")
_CM_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}_(PERP|[0-9]{6})$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_S3_NS = re.compile(r"^\{[^}]*\}")


@dataclass(frozen=True)
class ArchiveFile:
    """A verified archive file: its key, the zip's sha256 and the bytes of the CSV inside."""

    path: str
    sha256: str
    csv_bytes: bytes = field(repr=False)


@dataclass(frozen=True)
class ArchiveKey:
    """One object of the bucket listing."""

    key: str
    size: int
    last_modified: datetime | None


@dataclass(frozen=True)
class ListingPage:
    keys: list[ArchiveKey]
    prefixes: list[str]
    is_truncated: bool
    next_marker: str | None


def _period_label(day_or_month: str | date, period: str) -> str:
    if period == "daily":
        return parse_day(day_or_month).isoformat()
    if isinstance(day_or_month, str) and _MONTH_RE.match(day_or_month):
        year, month = map(int, day_or_month.split("-"))
        if not 1 <= month <= 12:
            raise InvalidInputError(f"invalid month {day_or_month!r}: expected YYYY-MM")
        return day_or_month
    try:
        return parse_day(day_or_month).strftime("%Y-%m")
    except InvalidInputError:
        raise InvalidInputError(f"invalid month {day_or_month!r}: expected YYYY-MM") from None


def archive_path(data_type: str, symbol: str, day_or_month: str | date, interval: str | None = None,
                 period: str = "daily", market: str = "um") -> str:
    """The bucket key of one archive zip, e.g. data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-15.zip.

    Refuses combinations that do not exist (daily fundingRate, monthly metrics, daily 1w, ...).
    """
    if data_type not in DATA_TYPES:
        raise InvalidInputError(f"unknown archive data type {data_type!r}: expected one of {', '.join(DATA_TYPES)}")
    if period not in PERIODS:
        raise InvalidInputError(f"unknown archive period {period!r}: expected daily or monthly")
    if market not in MARKETS:
        raise InvalidInputError(f"unknown futures market {market!r}: expected um or cm")
    if market == "cm":
        if not isinstance(symbol, str) or not _CM_SYMBOL_RE.match(symbol):
            raise InvalidInputError(f"invalid COIN-M symbol {symbol!r}: expected e.g. BTCUSD_PERP")
    else:
        validate_symbol(symbol)
    if period == "daily" and data_type in MONTHLY_ONLY:
        raise InvalidInputError(f"{data_type} is published monthly only: there is no daily {data_type} file")
    if period == "monthly" and data_type in DAILY_ONLY:
        raise InvalidInputError(f"{data_type} is published daily only: there is no monthly {data_type} file")
    label = _period_label(day_or_month, period)
    if data_type in KLINE_DATA_TYPES:
        if interval is None:
            raise InvalidInputError(f"{data_type} needs an interval")
        folder = "1mo" if interval == "1M" else interval
        allowed = DAILY_ARCHIVE_INTERVALS if period == "daily" else MONTHLY_ARCHIVE_INTERVALS
        if folder not in allowed:
            raise InvalidInputError(
                f"interval {interval!r} has no {period} {data_type} files: expected one of {', '.join(allowed)}"
            )
        return (f"data/futures/{market}/{period}/{data_type}/{symbol}/{folder}/"
                f"{symbol}-{folder}-{label}.zip")
    if interval is not None:
        raise InvalidInputError(f"{data_type} files have no interval (got {interval!r})")
    return f"data/futures/{market}/{period}/{data_type}/{symbol}/{symbol}-{data_type}-{label}.zip"


def parse_checksum(text: bytes | str, path: str) -> str:
    """The sha256 from a .CHECKSUM ('<64 hex>  <file name>', trailing newline optional), lower case.

    Raises CorruptArchiveError naming `path` when the content is not in that format or names another file.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    parts = text.strip().split()
    if not parts or not _SHA256_RE.match(parts[0]) or len(parts) > 2:
        raise CorruptArchiveError(path + ".CHECKSUM", f"not a sha256sum line: {text[:120]!r}")
    if len(parts) == 2:
        named = parts[1].lstrip("*")
        if named != path.rsplit("/", 1)[-1]:
            raise CorruptArchiveError(path + ".CHECKSUM", f"checksum is for {named!r}, not for this file")
    return parts[0].lower()


# The largest CSV a file may inflate to, by data type: a day of 1m klines is ~130 KB and BTCUSDT's busiest
# days of aggregate trades stay well under 500 MB, so these bound a zip bomb without refusing real data.
KLINE_ROW_BYTES = 256  # generous: a real 1m kline line is ~90 bytes
KLINE_SLACK_BYTES = 64 * 1024
TRADE_CSV_LIMIT = 1024 * 1024 * 1024  # aggTrades / trades: 1 GiB
OTHER_CSV_LIMIT = 64 * 1024 * 1024  # metrics, bookDepth, fundingRate, ...
_PATH_RE = re.compile(r"/(?P<period>daily|monthly)/(?P<type>[A-Za-z]+)/[A-Z0-9_]+/(?:(?P<interval>[0-9]+[a-zA-Z]+)/)?")


def csv_size_limit(path: str) -> int:
    """The most bytes the CSV of the archive file `path` may hold (see the constants above)."""
    match = _PATH_RE.search(path)
    if match is None:
        return OTHER_CSV_LIMIT
    data_type, interval = match["type"], match["interval"]
    days = 31 if match["period"] == "monthly" else 1
    if interval and interval in INTERVAL_MS:
        bars = max(1, DAY_MS // INTERVAL_MS[interval]) * days
        return bars * KLINE_ROW_BYTES + KLINE_SLACK_BYTES
    if data_type in ("aggTrades", "trades"):
        return TRADE_CSV_LIMIT * days
    return OTHER_CSV_LIMIT * days


def unzip_single_csv(data: bytes, path: str, limit: int | None = None) -> bytes:
    """The one CSV inside an archive zip; CorruptArchiveError when the zip is bad, holds anything else, or
    would inflate beyond `limit` bytes (default: csv_size_limit(path)), refused before inflating."""
    limit = csv_size_limit(path) if limit is None else limit
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) != 1:
                names = [m.filename for m in members][:5]
                raise CorruptArchiveError(path, f"expected one CSV in the zip, found {len(members)}: {names}")
            member = members[0]
            if member.file_size > limit:
                raise CorruptArchiveError(path, f"declares {member.file_size:,} bytes uncompressed, more than "
                                                f"the {limit:,} this file may hold")
            # zipfile inflates no more than the declared size and then checks the CRC: a member that
            # understates its size fails as unreadable, so the declared size bounds memory
            return archive.read(member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise CorruptArchiveError(path, f"unreadable zip ({exc})") from exc


def _local(tag: str) -> str:
    return _S3_NS.sub("", tag)


def parse_listing(xml: bytes | str) -> ListingPage:
    """One page of an S3 ListObjects (v1) answer; the namespace is optional."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        snippet = xml[:120] if isinstance(xml, str) else xml[:120].decode("utf-8", "replace")
        raise ArchiveError(f"bucket listing is not XML ({exc}): {snippet!r}") from exc
    if _local(root.tag) != "ListBucketResult":
        raise ArchiveError(f"bucket listing: unexpected root element {_local(root.tag)!r}")
    keys: list[ArchiveKey] = []
    prefixes: list[str] = []
    truncated = False
    next_marker = None
    for child in root:
        tag = _local(child.tag)
        if tag == "Contents":
            fields = {_local(c.tag): (c.text or "") for c in child}
            modified = fields.get("LastModified")
            keys.append(ArchiveKey(
                key=fields.get("Key", ""),
                size=int(fields.get("Size") or 0),
                last_modified=datetime.fromisoformat(modified) if modified else None,
            ))
        elif tag == "CommonPrefixes":
            prefixes.extend(c.text or "" for c in child if _local(c.tag) == "Prefix")
        elif tag == "IsTruncated":
            truncated = (child.text or "").strip().lower() == "true"
        elif tag == "NextMarker":
            next_marker = (child.text or "").strip() or None
    return ListingPage(keys, prefixes, truncated, next_marker)


class ArchiveClient:
    """Downloads and verifies data.binance.vision files and lists the bucket; close() when done."""

    def __init__(self, base_url: str = ARCHIVE_URL, listing_url: str = LISTING_URL,
                 http: httpx.Client | None = None, timeout: float = 30.0, max_retries: int = 5,
                 sleep: Sleep = time.sleep, *, backoff_base_s: float = 0.2, backoff_cap_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.listing_url = listing_url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.Client(
            # read: seconds without a byte (not for the whole file); a host that never answers costs that
            # once per attempt, and the breaker stops the attempts after a few
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
            headers={"User-Agent": "marketdata/0.1"},
            verify=tls_for(self.base_url),
            follow_redirects=True,
        )
        self._sleep = sleep
        self._policy = RetryPolicy(max_retries, backoff_base_s, backoff_cap_s)
        self.breaker = shared_breaker(self.base_url)
        self.listing_breaker = shared_breaker(self.listing_url)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ArchiveClient:
        return cls(base_url=settings.archive_url, listing_url=settings.archive_listing_url, **kwargs)

    def __repr__(self) -> str:
        return f"ArchiveClient(base_url={self.base_url!r}, listing_url={self.listing_url!r})"

    def __enter__(self) -> ArchiveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    archive_path = staticmethod(archive_path)

    def _download(self, path: str) -> bytes | None:
        url = f"{self.base_url}/{path.lstrip('/')}"
        response = get_with_retries(self._http, url, policy=self._policy, sleep=self._sleep,
                                    breaker=self.breaker)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_from_response(response.status_code, response.content, response.headers, url)
        return response.content

    def fetch_checksum(self, path: str) -> str | None:
        """The published sha256 of a zip (one small request), or None when not published yet."""
        text = self._download(path + ".CHECKSUM")
        return None if text is None else parse_checksum(text, path)

    def fetch(self, path: str, expected: str | None = None) -> ArchiveFile | None:
        """The verified CSV of an archive zip, or None when the file (or its checksum) is not published yet.
        `expected`: its .CHECKSUM, when the caller has just read it.

        Raises ChecksumMismatchError (the data is never returned) or CorruptArchiveError.
        """
        expected = expected or self.fetch_checksum(path)
        if expected is None:
            return None
        data = self._download(path)
        if data is None:
            return None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ChecksumMismatchError(path, expected, actual)
        return ArchiveFile(path, actual, unzip_single_csv(data, path))

    def daily_klines(self, symbol: str, interval: str, day: str | date, kind: str = "klines",
                     expected: str | None = None) -> tuple[RawKlines, str] | None:
        """One UTC day of klines (or mark/index/premium klines) and the zip's sha256; None if unpublished."""
        if kind not in KLINE_DATA_TYPES:
            raise InvalidInputError(f"unknown kline kind {kind!r}: expected one of {', '.join(KLINE_DATA_TYPES)}")
        path = archive_path(kind, symbol, day, interval=interval, period="daily")
        got = self.fetch(path, expected)
        if got is None:
            return None
        return raw_klines_from_csv(got.csv_bytes, symbol, interval, source="archive", name=path), got.sha256

    def _list(self, prefix: str, start_after: str | None = None,
              stop_after: str | None = None) -> tuple[list[ArchiveKey], list[str]]:
        keys: list[ArchiveKey] = []
        prefixes: list[str] = []
        marker: str | None = start_after
        while True:
            params = {"delimiter": "/", "prefix": prefix}
            if marker:
                params["marker"] = marker
            response = get_with_retries(self._http, self.listing_url, policy=self._policy, sleep=self._sleep,
                                        breaker=self.listing_breaker,
                                        params=params)
            if response.status_code != 200:
                raise error_from_response(response.status_code, response.content, response.headers,
                                          f"{self.listing_url}?prefix={prefix}")
            page = parse_listing(response.content)
            keys.extend(page.keys)
            prefixes.extend(page.prefixes)
            if not page.is_truncated or (stop_after is not None and page.keys and page.keys[-1].key > stop_after):
                return keys, prefixes
            following = page.next_marker or max(
                [k.key for k in page.keys] + page.prefixes, default=None
            )
            if following is None or (marker is not None and following <= marker):
                raise ArchiveError(f"bucket listing of {prefix!r} is truncated but gives no next marker")
            marker = following

    def list_keys(self, prefix: str, *, start_after: str | None = None,
                  stop_after: str | None = None) -> list[ArchiveKey]:
        """Every object directly under `prefix` (all pages, following `marker`); keys sort by name, so
        `start_after` skips to a range and `stop_after` ends the paging once a page passes it (a folder
        since 2019 is six pages; a year of it, one)."""
        return self._list(prefix, start_after, stop_after)[0]

    def list_prefixes(self, prefix: str) -> list[str]:
        """The 'folders' directly under `prefix` (e.g. the symbols of a data type)."""
        return self._list(prefix)[1]
