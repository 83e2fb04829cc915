"""`data_quality`: per UTC day and symbol, how complete each dataset is, its gaps by class, its repairs
and its share of provisional (not archive-confirmed) rows, from `partition_ledger` and the tables
(validation/quality.py does the computing).

Shown in the UI as a markdown table per partition, and as numeric metadata per dataset
(`<dataset>/completeness`, `/provisional_share`, `/fillable_gaps`, `/exchange_gaps`, `/repairs`, and the
day's `score`), which the asset's Plots tab draws over partitions. Range runs report each day as its own
observation (attributed to its partition) so the plots hold one point per day in every case.
"""

from collections.abc import Sequence
from datetime import date

import dagster as dg

from marketdata_assets.defs.datasets.spec import DailyDatasetSpec
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


def md_cell(text: str) -> str:
    """Text for a markdown table cell: a partition key's `|` would split the cell."""
    return text.replace("|", "\\|")


def summary(days: list[DayQuality]) -> dict:
    worst = sorted(days, key=lambda q: q.score)[:20]
    return {
        "partitions": len(days),
        "mean_score": round(sum(q.score for q in days) / len(days), 6),
        "worst_days": dg.MetadataValue.md("| partition | score |\n|---|---|\n" + "\n".join(
            f"| {md_cell(str(partition_key(q.day, q.symbol)))} | {q.score:.2%} |" for q in worst)),
    }


class QualityLoader:
    """Scores days from the store (no Binance request): the daily-loader protocol over `day_quality`."""

    def __init__(self, engine, datasets: Sequence[tuple[str, str]]) -> None:
        self.engine, self.datasets = engine, list(datasets)

    def load(self, symbol: str, days: Sequence[date]) -> list[DayQuality]:
        return [day_quality(self.engine, symbol, day, self.datasets) for day in days]


def quality_spec(scored: Sequence[DailyDatasetSpec]) -> DailyDatasetSpec:
    """`data_quality` over the ledger rows of `scored`, downstream of their assets in the lineage."""
    pairs = [spec.ledger for spec in scored]
    return DailyDatasetSpec(
        name=QUALITY_KEY.path[-1], ledger_dataset="data_quality", table="partition_ledger", group="quality",
        description="Data quality per UTC day and symbol: completeness per dataset, gaps by class, repairs, "
                    "provisional (not archive-confirmed) share; a table per partition and numeric metadata "
                    "per dataset for the Plots tab. Reads the store only (no Binance request).",
        loader=lambda runtime: QualityLoader(runtime.engine, pairs),
        checks=None,
        day_metadata=quality_metadata,
        summary=lambda results, _loader: summary(results),
        days_per_run=None, pool=None, deps=tuple(spec.key for spec in scored), kinds=frozenset({"python"}),
        scored=False,
    )
