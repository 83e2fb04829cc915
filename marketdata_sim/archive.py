"""The data.binance.vision archive of the simulated market: zips + .CHECKSUM, publication times, S3 listing.

Keys follow SPEC C.1: data/futures/um/{daily|monthly}/{dataType}/{SYMBOL}/[{interval}/]{file}.zip.
Files are built on first request from the market (the same rows as REST) and cached as bytes.
A daily file for day D is published at D+1 08:30 UTC; a monthly file at 08:30 UTC on the first Monday of
the next month (SPEC C.5). Before that the key answers 404 NoSuchKey, like S3.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from xml.sax.saxutils import escape

import numpy as np

from marketdata_sim import derived
from marketdata_sim.fmt import fmt_plain, hash_u01
from marketdata_sim.market import SimMarket
from marketdata_sim.symbols import DAY_MS, SymbolSpec
from marketdata_sim.timegrid import DAILY_ARCHIVE_INTERVALS, MONTHLY_ARCHIVE_INTERVALS

PREFIX = "data/futures/um/"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
PUBLISH_DELAY_MS = 8 * 3_600_000 + 30 * 60_000  # 08:30 UTC
DAILY_HEADER_FROM = date(2022, 9, 1)  # daily CSVs carry a header from this day (SPEC C.3)
MONTHLY_HEADER_FROM = date(2022, 6, 1)  # monthly up to 2022-05 lack it (binance-public-data #246)
KLINE_TYPES = {"klines": "trade", "markPriceKlines": "mark", "indexPriceKlines": "index",
               "premiumIndexKlines": "premium"}
DAILY_TYPES = ("aggTrades", "bookDepth", "indexPriceKlines", "klines", "markPriceKlines", "metrics",
               "premiumIndexKlines")
MONTHLY_TYPES = ("fundingRate", "indexPriceKlines", "klines", "markPriceKlines", "premiumIndexKlines")
KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                "taker_buy_quote_volume,ignore")
HEADERS = {
    "aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
    "fundingRate": "calc_time,funding_interval_hours,last_funding_rate",
    "metrics": "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
               "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio",
    "bookDepth": "timestamp,percentage,depth,notional",
}
ALWAYS_HEADER = ("metrics", "bookDepth")
ZIP_TIME = (2020, 1, 1, 0, 0, 0)

_KEY_RE = re.compile(
    r"^data/futures/um/(?P<freq>daily|monthly)/(?P<type>[A-Za-z]+)/(?P<sym>[A-Z0-9_]+)/"
    r"(?:(?P<folder_iv>[0-9]+[a-z]+)/)?(?P<file>[A-Z0-9_]+-(?P<part>[0-9a-zA-Z]+)-(?P<date>\d{4}-\d{2}(?:-\d{2})?)"
    r"\.zip)(?P<checksum>\.CHECKSUM)?$"
)


@dataclass(frozen=True)
class ArchiveFile:
    key: str  # ... .zip
    freq: str
    data_type: str
    spec: SymbolSpec
    interval: str | None  # archive spelling (1mo)
    start_ms: int
    end_ms: int
    period: str  # YYYY-MM-DD or YYYY-MM

    @property
    def filename(self) -> str:
        return self.key.rsplit("/", 1)[1]


def _day_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def publish_time(f: ArchiveFile) -> int:
    """When the file appears: D+1 08:30 UTC (daily), first Monday of the next month 08:30 UTC (monthly)."""
    if f.freq == "daily":
        return f.end_ms + PUBLISH_DELAY_MS
    nxt = datetime.fromtimestamp(f.end_ms / 1000, tz=UTC).date()
    monday = nxt + timedelta(days=(7 - nxt.weekday()) % 7)
    return _day_ms(monday) + PUBLISH_DELAY_MS


def last_modified(market: SimMarket, f: ArchiveFile) -> int:
    """Publication time plus 0-40 min of deterministic spread (SPEC C.5 measured 08:32-09:10)."""
    return publish_time(f) + int(hash_u01(market.seed, f.spec.sid, f.start_ms, 51)[()] * 2_400_000)


class Archive:
    """Builds, caches and lists the archive files of one SimMarket."""

    def __init__(self, market: SimMarket, cache_bytes: int = 512 * 1024 * 1024) -> None:
        self.market = market
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._size = 0
        self._generation = market.generation
        self._lock = threading.Lock()

    # ----- keys ----------------------------------------------------------------------------------
    def parse_key(self, key: str) -> ArchiveFile | None:
        """The file a key (or its .CHECKSUM) names, if it is well-formed and within the symbol's life."""
        m = _KEY_RE.match(key)
        if not m:
            return None
        freq, dtype, sym = m["freq"], m["type"], m["sym"]
        spec = self.market.specs.get(sym)
        if spec is None or dtype not in (DAILY_TYPES if freq == "daily" else MONTHLY_TYPES):
            return None
        interval = m["folder_iv"]
        if dtype in KLINE_TYPES:
            allowed = DAILY_ARCHIVE_INTERVALS if freq == "daily" else MONTHLY_ARCHIVE_INTERVALS
            if interval not in allowed or m["part"] != interval:
                return None
        elif interval is not None or m["part"] != dtype:
            return None
        try:
            if freq == "daily":
                d = date.fromisoformat(m["date"])
                start, end = _day_ms(d), _day_ms(d) + DAY_MS
            else:
                if len(m["date"]) != 7:
                    return None
                d = date.fromisoformat(m["date"] + "-01")
                start, end = _day_ms(d), _day_ms(_next_month(d))
        except ValueError:
            return None
        if m["file"] != f"{sym}-{m['part']}-{m['date']}.zip":
            return None
        if end <= spec.onboard_ms or start >= spec.end_ms():
            return None
        zkey = key.removesuffix(".CHECKSUM")
        return ArchiveFile(zkey, freq, dtype, spec, interval, start, end, m["date"])

    def published(self, f: ArchiveFile) -> bool:
        return self.market.now_ms >= publish_time(f)

    # ----- content -------------------------------------------------------------------------------
    def _has_header(self, f: ArchiveFile) -> bool:
        if f.data_type in ALWAYS_HEADER:
            return True
        d = datetime.fromtimestamp(f.start_ms / 1000, tz=UTC).date()
        return d >= (DAILY_HEADER_FROM if f.freq == "daily" else MONTHLY_HEADER_FROM)

    def csv_bytes(self, f: ArchiveFile) -> bytes:
        """The CSV member of the zip (header per SPEC C.3)."""
        m, spec = self.market, f.spec
        if f.data_type in KLINE_TYPES:
            rest_iv = "1M" if f.interval == "1mo" else f.interval
            kind = KLINE_TYPES[f.data_type]
            bars = m.bars(spec, rest_iv, f.start_ms, f.end_ms, kind, now=max(m.now_ms, f.end_ms))
            body = m.kline_csv(spec, rest_iv, bars, kind)
            header = KLINE_HEADER
        elif f.data_type == "aggTrades":
            body = self._agg_trades_csv(spec, f.start_ms // DAY_MS)
            header = HEADERS["aggTrades"]
        elif f.data_type == "fundingRate":
            body = derived.funding_month_csv(m, spec, f.start_ms, f.end_ms)
            header = HEADERS["fundingRate"]
        elif f.data_type == "metrics":
            body = derived.metrics_day_csv(m, spec, f.start_ms // DAY_MS)
            header = HEADERS["metrics"]
        else:
            body = derived.book_depth_day_csv(m, spec, f.start_ms // DAY_MS)
            header = HEADERS["bookDepth"]
        return (header.encode() + b"\n" + body) if self._has_header(f) else body

    def _agg_trades_csv(self, spec: SymbolSpec, day: int) -> bytes:
        bars = self.market.day_bars(spec, day)
        if bars is None:
            return b""
        a = derived.gen.day_agg_trades(spec, self.market.seed, bars)
        if not len(a["a"]):
            return b""
        cols = [a["a"].astype(np.str_), fmt_plain(a["p"], spec.price_decimals),
                fmt_plain(a["q"], spec.qty_decimals), a["f"].astype(np.str_), a["l"].astype(np.str_),
                a["T"].astype(np.str_), np.where(a["m"], "true", "false")]
        row = cols[0]
        for col in cols[1:]:
            row = np.strings.add(np.strings.add(row, ","), col)
        return ("\n".join(row.tolist()) + "\n").encode()

    def zip_bytes(self, f: ArchiveFile) -> bytes:
        """The zip of one file, built once and cached (LRU bounded by bytes)."""
        with self._lock:
            if self._generation != self.market.generation:
                self._cache.clear()
                self._size = 0
                self._generation = self.market.generation
            cached = self._cache.get(f.key)
            if cached is not None:
                self._cache.move_to_end(f.key)
                return cached
        data = self.csv_bytes(f)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            info = zipfile.ZipInfo(f.filename.removesuffix(".zip") + ".csv", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=1)
        out = buf.getvalue()
        with self._lock:
            self._cache[f.key] = out
            self._size += len(out)
            while self._size > self._cache_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._size -= len(old)
        return out

    def cached_size(self, key: str) -> int | None:
        data = self._cache.get(key)
        return None if data is None else len(data)

    # ----- listing -------------------------------------------------------------------------------
    def _files(self, freq: str, dtype: str, spec: SymbolSpec, interval: str | None) -> list[str]:
        """Names of the published files (zip and CHECKSUM) in one leaf folder, sorted."""
        now = self.market.now_ms
        first = datetime.fromtimestamp(spec.onboard_ms / 1000, tz=UTC).date()
        last = datetime.fromtimestamp((spec.end_ms() - 1) / 1000, tz=UTC).date()
        part = interval if interval else dtype
        names: list[str] = []
        if freq == "daily":
            latest = datetime.fromtimestamp((now - PUBLISH_DELAY_MS) / 1000, tz=UTC).date() - timedelta(days=1)
            d, stop = first, min(last, latest)
            while d <= stop:
                names.append(f"{spec.symbol}-{part}-{d.isoformat()}.zip")
                d += timedelta(days=1)
        else:
            d = date(first.year, first.month, 1)
            while d <= last:
                stub = ArchiveFile("", "monthly", dtype, spec, interval, _day_ms(d), _day_ms(_next_month(d)), "")
                if publish_time(stub) > now:
                    break
                names.append(f"{spec.symbol}-{part}-{d.isoformat()[:7]}.zip")
                d = _next_month(d)
        return sorted(n + s for n in names for s in ("", ".CHECKSUM"))

    def _children(self, folder: str) -> list[tuple[str, bool]]:
        """(path, is_folder) below a folder path ('' is the bucket root), sorted like S3 keys."""
        parts = [p for p in folder.split("/") if p]
        if len(parts) < 3:
            nxt = ["data", "futures", "um"][len(parts)]
            return [(folder + nxt + "/", True)]
        if parts[:3] != ["data", "futures", "um"]:
            return []
        rest = parts[3:]
        if not rest:
            return [(folder + "daily/", True), (folder + "monthly/", True)]
        freq = rest[0]
        if freq not in ("daily", "monthly"):
            return []
        types = DAILY_TYPES if freq == "daily" else MONTHLY_TYPES
        if len(rest) == 1:
            return sorted((folder + t + "/", True) for t in types)
        dtype = rest[1]
        if dtype not in types:
            return []
        if len(rest) == 2:
            return sorted((folder + s + "/", True) for s in self.market.specs)
        spec = self.market.specs.get(rest[2])
        if spec is None:
            return []
        if dtype in KLINE_TYPES:
            ivs = DAILY_ARCHIVE_INTERVALS if freq == "daily" else MONTHLY_ARCHIVE_INTERVALS
            if len(rest) == 3:
                return sorted((folder + iv + "/", True) for iv in ivs)
            if len(rest) == 4 and rest[3] in ivs:
                return [(folder + n, False) for n in self._files(freq, dtype, spec, rest[3])]
            return []
        if len(rest) == 3:
            return [(folder + n, False) for n in self._files(freq, dtype, spec, None)]
        return []

    def _walk(self, folder: str, prefix: str, delimiter: str, marker: str) -> Iterator[tuple[str, bool]]:
        for path, is_folder in self._children(folder):
            if is_folder:
                if delimiter == "/" and path.startswith(prefix) and len(path) > len(prefix):
                    if path > marker:
                        yield path, True
                    continue
                if not (path.startswith(prefix) or prefix.startswith(path)):
                    continue
                if path < marker and not marker.startswith(path):
                    continue
                yield from self._walk(path, prefix, delimiter, marker)
            elif path.startswith(prefix) and path > marker:
                yield path, False

    def listing_xml(self, prefix: str = "", delimiter: str = "", marker: str = "", max_keys: int = 1000,
                    modified: Mapping[str, int] | None = None) -> bytes:
        """An S3 ListObjects (v1) result for the bucket (SPEC C.4); `modified` overrides LastModified by key
        (files rewritten later: the `republished` fault)."""
        modified = modified or {}
        max_keys = max(0, min(max_keys, 1000))
        items: list[tuple[str, bool]] = []
        truncated = False
        for item in self._walk("", prefix, delimiter, marker):
            if len(items) >= max_keys:
                truncated = True
                break
            items.append(item)
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n',
            f'<ListBucketResult xmlns="{S3_NS}"><Name>data.binance.vision</Name>',
            f"<Prefix>{escape(prefix)}</Prefix><Marker>{escape(marker)}</Marker><MaxKeys>{max_keys}</MaxKeys>",
        ]
        if delimiter:
            out.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        out.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if truncated and delimiter and items:
            out.append(f"<NextMarker>{escape(items[-1][0])}</NextMarker>")
        for path, is_folder in items:
            if is_folder:
                continue
            f = self.parse_key(path)
            if f is None:
                continue
            out.append(f"<Contents><Key>{escape(path)}</Key><LastModified>"
                       f"{_iso(modified.get(f.key) or last_modified(self.market, f))}"
                       f"</LastModified><Size>{self._size_of(f, path)}</Size>"
                       "<StorageClass>STANDARD</StorageClass></Contents>")
        for path, is_folder in items:
            if is_folder:
                out.append(f"<CommonPrefixes><Prefix>{escape(path)}</Prefix></CommonPrefixes>")
        out.append("</ListBucketResult>")
        return "".join(out).encode()

    def _size_of(self, f: ArchiveFile, path: str) -> int:
        """Exact when the file was built already; an estimate otherwise (building every listed file is slow)."""
        if path.endswith(".CHECKSUM"):
            return 64 + 2 + len(f.filename)
        size = self.cached_size(f.key)
        if size is not None:
            return size
        days = max(1, (f.end_ms - f.start_ms) // DAY_MS)
        return 40 * 1440 * days if f.data_type in KLINE_TYPES else 30_000 * days


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def http_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def checksum_text(zip_data: bytes, filename: str) -> bytes:
    """sha256sum format, two spaces, no trailing newline (SPEC C.2)."""
    return f"{hashlib.sha256(zip_data).hexdigest()}  {filename}".encode()


def no_such_key(key: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
            f"<Message>The specified key does not exist.</Message><Key>{escape(key)}</Key></Error>").encode()
