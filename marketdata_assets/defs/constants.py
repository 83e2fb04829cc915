"""Names shared across the code location: pool, tags, asset keys. One place, so the UI and the sensors agree."""

from __future__ import annotations

import dagster as dg

from marketdata_assets.binance.kline_kinds import KLINE_KINDS, TRADE_KLINES

# Runs that call Binance share this pool; its limit (dagster.yaml `concurrency.pools.default_limit`) bounds
# how many such steps run at once across all runs, on top of each client following X-MBX-USED-WEIGHT-1M.
BINANCE_POOL = "binance_api"

EXCHANGE_INFO_KEY = dg.AssetKey("exchange_info")

# Run tags: why a run exists (shown in the UI's run list and filterable there).
TAG_REASON = "marketdata/reason"
TAG_REPAIR_ATTEMPT = "marketdata/repair_attempt"
TAG_GAPS = "marketdata/gaps"
TAG_INTERVAL = "marketdata/interval"
REASON_DAILY = "daily_refresh"
REASON_REPAIR = "gap_repair"
REASON_SETTLEMENT = "archive_settlement"
REASON_DISCOVERY = "symbol_discovery"
REASON_BACKFILL = "cli_backfill"
REASON_DOWNLOAD = "download"
REASON_AUDIT = "audit"

GAP_CHECK = "gaps"
# every table-backed dataset's audit of its stored days (validation/audit.py)
AUDIT_CHECK = "audit"
AUDIT_DESCRIPTION = (
    "The table still holds what the load stored: the day's row count equals the ledger's (the expected grid "
    "less the exchange gaps recorded at load) and, once the day is settled, the digest of its rows equals the "
    "one recorded at load. Rows deleted or altered since fail (the repair sensor reloads the day); a day "
    "never loaded warns.")
# checks whose failure the repair sensors act on
REPAIR_CHECKS = (GAP_CHECK, AUDIT_CHECK)


def kline_asset_key(interval: str, kind: str = TRADE_KLINES) -> dg.AssetKey:
    """`klines_1h` for trade klines; `mark_price_klines_1m`, `premium_index_klines_1h`, ... for the others."""
    return dg.AssetKey(f"{KLINE_KINDS[kind].dataset}_{interval}")
