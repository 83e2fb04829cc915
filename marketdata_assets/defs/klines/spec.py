"""The kline-shaped datasets: trade klines per interval, and mark/index/premium price klines.

Trade klines: one asset per configured interval (`klines_1m`, `klines_5m`, ...). Price klines: one asset
per kind and per configured interval in PRICE_KLINE_INTERVALS (1m for detail, 1h for overviews; the other
intervals are aggregates of these and not worth a Binance request each). All of them load with
`KlineLoader` (archive first, REST for the rest and every hole, rows and ledger rows in one transaction)
and share one check family (validation/kline_checks.py), adapted by kind: the premium index is signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from marketdata_assets.binance.intervals import day_start_ms
from marketdata_assets.binance.kline_kinds import KLINE_KINDS, PRICE_KLINE_KINDS, TRADE_KLINES, KlineKind
from marketdata_assets.defs.constants import EXCHANGE_INFO_KEY, TAG_INTERVAL, kline_asset_key
from marketdata_assets.defs.datasets.metadata import range_metadata, with_details
from marketdata_assets.defs.datasets.spec import CheckFamily, DailyDatasetSpec
from marketdata_assets.defs.klines.metadata import kline_details, kline_range_details, preview
from marketdata_assets.validation import kline_checks as kc

PRICE_KLINE_INTERVALS = ("1m", "1h")
PREVIEW_DAYS = 62
STREAM_KLINES = "stream_klines"  # the sidecar's closed klines (defs/streaming/assets.py)
TAG_KIND = "marketdata/kline_kind"
TRADE_REPAIR_SENSOR = "gap_repair"
PRICE_REPAIR_SENSOR = "gap_repair_price_klines"

CHECK_DESCRIPTIONS = {
    kc.ROWS: "Every stored row is valid, in three parts, each with its own verdict; a failure names its part. "
             "schema: pandera schema: types, UTC times, the interval grid, close_time; duplicates: no open "
             "time stored twice; ohlc: low <= open, close <= high; prices > 0; volumes >= 0; taker buy <= "
             "volume (the premium index is signed: ordering only).",
    kc.GAPS: "Missing bars, classified: fillable fails (the repair sensor re-runs the partition), exchange gap "
             "passes with a warning, out of range (before listing, after delisting, in the future) is not a gap.",
    kc.CONTINUITY: "The first bar follows the previous day's last bar (open within 5% of its close).",
    kc.AGREES_WITH_1M: "Each bar equals the aggregate of its 1m bars where those are all stored.",
}
WARN_ONLY = frozenset({kc.CONTINUITY})


def trade_check_keys(interval: str) -> list[dg.AssetCheckKey]:
    """Every check of `klines_<interval>` (runs that load a day also check it)."""
    key = kline_asset_key(interval)
    return [dg.AssetCheckKey(key, name) for name in kc.kline_check_names(KLINE_KINDS[TRADE_KLINES], interval)]


def kline_check_family(kind: KlineKind, interval: str) -> CheckFamily:
    names = kc.kline_check_names(kind, interval)
    return CheckFamily(
        descriptions={name: CHECK_DESCRIPTIONS[name] for name in names},
        evaluate=lambda runtime, symbol, days, selected: kc.check_kline_days(
            runtime.repo, kind, symbol, interval, days, selected),
        warn_only=WARN_ONLY,
    )


def _previews(kind: KlineKind, interval: str):
    """A preview of each day's stored bars, from one read per symbol; a run of more than PREVIEW_DAYS days
    gets none (a symbol-year's 525,600 bars are not worth a second read for a table of five rows a day).
    Prices as stored (Decimal text, trailing zeros kept), as the exchange published them."""
    def day_extras(runtime, results) -> dict:
        out: dict = {}
        if len(results) > PREVIEW_DAYS:
            return out
        by_symbol: dict[str, list] = {}
        for result in results:
            by_symbol.setdefault(result.symbol, []).append(result.day)
        for symbol, days in by_symbol.items():
            first, last = min(days), max(days)
            start = datetime.fromtimestamp(day_start_ms(first) / 1000, tz=UTC)
            end = datetime.fromtimestamp(day_start_ms(last) / 1000, tz=UTC) + timedelta(days=1)
            frame = runtime.repo.get_klines(symbol, interval, start, end, exact=True, kind=kind.name)
            for day, rows in kc.split_by_day(frame, days).items():
                out[(symbol, day)] = {"preview": preview(rows)}
                if not kind.is_trade:
                    out[(symbol, day)]["ledger_dataset"] = kind.dataset
        return out
    return day_extras


def kline_spec(kind_name: str, interval: str, days_per_run: int, with_1m: bool = False) -> DailyDatasetSpec:
    """`with_1m`: klines_1m is configured too, and this interval's agreement check reads it (a lineage edge)."""
    kind = KLINE_KINDS[kind_name]
    key = kline_asset_key(interval, kind_name).path[-1]
    if kind.is_trade:
        group, tags = "klines", {TAG_INTERVAL: interval}
        table = "kline_data"
        description = (
            f"Binance USD-M Futures {interval} klines, one partition per UTC day and symbol. Settled days come "
            "from the data.binance.vision archive (sha256 verified), the rest and every archive hole from REST; "
            "what REST does not have either is recorded as an exchange gap. Rows live in the `kline_data` table, "
            "per-day figures in `partition_ledger`.")
        metadata = {"interval": interval}
    else:
        group, tags = "price_klines", {TAG_INTERVAL: interval, TAG_KIND: kind.name}
        table = kind.dataset
        description = (
            f"Binance USD-M Futures {kind.label} {interval} klines, one partition per UTC day and symbol: archive "
            f"first (sha256 verified), REST for the rest and every hole. Rows in `{table}` (volumes are "
            "Binance's \"0\"), per-day figures in `partition_ledger`.")
        metadata = {"interval": interval, "kind": kind.name}
    return DailyDatasetSpec(
        name=key, ledger_dataset=kind.dataset, interval=interval, table=table, group=group,
        description=description,
        loader=lambda runtime: runtime.kline_loader(interval, kind.name),
        checks=kline_check_family(kind, interval),
        day_metadata=with_details(kline_details),
        summary=lambda results, loader: range_metadata(
            results, lambda rs: kline_range_details(rs, dict(loader.written))),
        day_extras=_previews(kind, interval),
        days_per_run=days_per_run, tags=tags, metadata=metadata,
        repair_sensor=TRADE_REPAIR_SENSOR if kind.is_trade else PRICE_REPAIR_SENSOR,
        deps=_deps(kind, interval, with_1m),
    )


def _deps(kind: KlineKind, interval: str, with_1m: bool) -> tuple[dg.AssetKey, ...]:
    """exchange_info (listing and delisting bound every day); for trade klines the sidecar's klines, which
    write the same table, and for intervals above 1m klines_1m, which their agreement check reads."""
    deps = [EXCHANGE_INFO_KEY]
    if kind.is_trade:
        deps.append(dg.AssetKey(STREAM_KLINES))
        if interval != "1m" and with_1m:
            deps.append(kline_asset_key("1m"))
    return tuple(deps)


def kline_specs(intervals: Sequence[str], days_per_run: int) -> list[DailyDatasetSpec]:
    """Trade klines for every configured interval, price klines for those in PRICE_KLINE_INTERVALS."""
    trade = [kline_spec(TRADE_KLINES, interval, days_per_run, with_1m="1m" in intervals) for interval in intervals]
    price = [kline_spec(kind, interval, days_per_run) for kind in PRICE_KLINE_KINDS
             for interval in intervals if interval in PRICE_KLINE_INTERVALS]
    return trade + price
