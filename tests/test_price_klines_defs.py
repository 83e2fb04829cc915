"""Dagster assets and checks of mark/index/premium klines: real instance, real SQLite store, the simulator.

A range run is attributed per partition; a deleted bar fails that partition's gaps check and a re-run
passes it; the premium index (negative values) passes its own schema and OHLC rules.
"""

from __future__ import annotations

from datetime import date

from marketdata_assets.binance.intervals import day_start_ms
from marketdata_assets.defs.constants import kline_asset_key
from tests.support.datasets import run_dataset
from tests.support.defs import check_results, partition_metadata


def test_location_has_a_price_kline_asset_per_kind_for_1h_only(md_defs):
    names = {k.path[-1] for k in md_defs.resolve_all_asset_keys()}
    assert {"mark_price_klines_1h", "index_price_klines_1h", "premium_index_klines_1h"} <= names
    assert not any(n.endswith("price_klines_5m") or n == "premium_index_klines_5m" for n in names)


def test_range_run_per_partition_then_a_deleted_bar_fails_and_a_rerun_repairs(md_defs, dg_instance, md_resource):
    key = kline_asset_key("1h", "markPriceKlines")
    days = ["2024-03-01|BTCUSDT", "2024-03-02|BTCUSDT"]
    result = run_dataset(md_defs, dg_instance, md_resource, key, start=days[0], end=days[1])
    assert result.success
    evaluations = check_results(result)
    assert {p for _, p in evaluations} == set(days)
    # the one kline check family: schema, duplicates and OHLC are the three parts of `rows`
    assert {n for n, _ in evaluations} == {"rows", "gaps", "continuity", "audit"}
    assert all(e.passed for e in evaluations.values())
    assert all(evaluations[("rows", p)].metadata[f"{part}_status"].value == "passed"
               for p in days for part in ("schema", "duplicates", "ohlc"))
    observed = partition_metadata(dg_instance, key)
    assert {p: m["dagster/row_count"].value for p, m in observed.items()} == {p: 24 for p in days}

    repo = md_resource.runtime().repo
    lo = day_start_ms(date(2024, 3, 2))
    assert repo.delete_klines("BTCUSDT", "1h", lo + 5 * 3_600_000, lo + 6 * 3_600_000, kind="markPriceKlines") == 1
    checked = check_results(run_dataset(md_defs, dg_instance, md_resource, key, start=days[1], end=days[1],
                                 checks_only=True), "gaps")
    assert not checked[("gaps", days[1])].passed
    assert checked[("gaps", days[1])].metadata["fillable_bars"].value == 1
    ledger = repo.get_ledger("mark_price_klines", "BTCUSDT", "1h", date(2024, 3, 2), date(2024, 3, 2))
    assert ledger[0].check_status == "failed"

    again = check_results(run_dataset(md_defs, dg_instance, md_resource, key, pk=days[1]), "gaps")
    assert again[("gaps", days[1])].passed
    assert repo.count_klines("BTCUSDT", "1h", kind="markPriceKlines") == 48


def test_premium_index_passes_its_checks_with_negative_values(md_defs, dg_instance, md_resource):
    key = kline_asset_key("1h", "premiumIndexKlines")
    result = run_dataset(md_defs, dg_instance, md_resource, key, pk="2024-03-06|ETHUSDT")
    evaluations = check_results(result)
    assert {n for n, _ in evaluations} == {"rows", "gaps", "audit"}  # no continuity for a signed value near zero
    assert all(e.passed for e in evaluations.values())
    assert all(evaluations[("rows", "2024-03-06|ETHUSDT")].metadata[f"{part}_status"].value == "passed"
               for part in ("schema", "duplicates", "ohlc"))
    frame = md_resource.runtime().repo.get_klines("ETHUSDT", "1h", date(2024, 3, 6), date(2024, 3, 7),
                                                  kind="premiumIndexKlines")
    assert len(frame) == 24 and (frame["low"] < 0).any()
