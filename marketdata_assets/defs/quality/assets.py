"""`data_quality`: per UTC day and symbol, how complete each dataset is, its gaps by class, its repairs
and its share of provisional (not archive-confirmed) rows, from `partition_ledger` and the tables
(validation/quality.py does the computing).

Shown in the UI as a markdown table per partition, and as numeric metadata per dataset
(`<dataset>/completeness`, `/provisional_share`, `/fillable_gaps`, `/exchange_gaps`, `/repairs`, and the
day's `score`), which the asset's Plots tab draws over partitions. Range runs report each day as its own
observation (attributed to its partition) so the plots hold one point per day in every case.
"""

from collections.abc import Sequence

import dagster as dg

from marketdata_assets.defs.datasets.daily_asset import build_daily_dataset_asset
from marketdata_assets.defs.partitions import partition_key
from marketdata_assets.validation.quality import DayQuality, day_quality

QUALITY_KEY = dg.AssetKey("data_quality")


def quality_metadata(quality: DayQuality) -> dict:
    meta: dict = {"quality": dg.MetadataValue.md(quality.markdown()), "score": round(quality.score, 6)}
    for d in quality.datasets:
        meta[f"{d.label}/completeness"] = round(d.completeness, 6)
        meta[f"{d.label}/provisional_share"] = round(d.provisional_share, 6)
        meta[f"{d.label}/fillable_gaps"] = d.gaps.get("fillable", 0)
        meta[f"{d.label}/exchange_gaps"] = d.gaps.get("exchange_gap", 0)
        meta[f"{d.label}/repairs"] = d.repairs
    meta["not_loaded"] = dg.MetadataValue.json([d.label for d in quality.datasets if d.status == "not_loaded"])
    return meta


def summary(days: list[DayQuality]) -> dict:
    worst = sorted(days, key=lambda q: q.score)[:20]
    return {
        "partitions": len(days),
        "mean_score": round(sum(q.score for q in days) / len(days), 6),
        "worst_days": dg.MetadataValue.md("| partition | score |\n|---|---|\n" + "\n".join(
            f"| {partition_key(q.day, q.symbol)} | {q.score:.2%} |" for q in worst)),
    }


def build_quality_asset(partitions_def: dg.PartitionsDefinition, datasets: Sequence[tuple[str, str]],
                        upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """`datasets`: the (ledger dataset, interval) pairs scored; `upstream`: their assets (lineage)."""
    pairs = list(datasets)
    return build_daily_dataset_asset(
        QUALITY_KEY,
        partitions_def=partitions_def,
        days_per_run=None,
        deps=upstream,
        pool=None,
        group_name="quality",
        kinds=("python",),
        description="Data quality per UTC day and symbol: completeness per dataset, gaps by class, repairs, "
                    "provisional (not archive-confirmed) share; a table per partition and numeric metadata "
                    "per dataset for the Plots tab. Reads the store only (no Binance request).",
        loader=lambda runtime: lambda symbol, days: [day_quality(runtime.engine, symbol, d, pairs) for d in days],
        day_metadata=quality_metadata,
        summary=summary,
        errors=(),
    )
