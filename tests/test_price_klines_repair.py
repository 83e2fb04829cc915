"""Price kline gap repair: a removed mark-price bar fails its partition's gaps check, `gap_repair_price_klines`
requests exactly that partition of `mark_price_klines_1h`, and after the run the check passes."""

from __future__ import annotations

from datetime import UTC, datetime

from marketdata_assets.defs.constants import kline_asset_key
from tests.support.datasets import repair_flow

PK = "2024-03-04|BTCUSDT"


def test_removed_mark_price_bar_is_found_and_repaired_by_the_sensor(defs_config, dg_instance, store_resource):
    from marketdata_assets.defs import build_definitions

    defs = build_definitions(defs_config, store_resource)
    key = kline_asset_key("1h", "markPriceKlines")
    repo = store_resource.runtime().repo
    five = datetime(2024, 3, 4, 5, tzinfo=UTC)

    def remove():
        assert repo.delete_klines("BTCUSDT", "1h", five, five.replace(hour=6), kind="markPriceKlines") == 1

    failed = repair_flow(defs, dg_instance, store_resource, key, PK, "gap_repair_price_klines", remove,
                         ("mark_price_klines", "1h"))
    assert failed["fillable_bars"] == 1
    day = datetime(2024, 3, 4, tzinfo=UTC)
    assert repo.count_klines("BTCUSDT", "1h", day, day.replace(day=5), kind="markPriceKlines") == 24
