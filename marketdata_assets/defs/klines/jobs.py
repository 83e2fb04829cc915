"""Named jobs of the kline assets, one pair per interval, for runs started outside the UI (`marketdata
download --in-dagster`, `marketdata audit`): such a run belongs to a job of the code location, so the UI
links it to its job and can re-execute it, where a `dagster.materialize` run would be an ephemeral job.

`klines_<interval>_job` loads the asset's partitions and runs its checks; `klines_<interval>_checks_job`
runs the checks only (nothing loaded).
"""

import dagster as dg

from marketdata_assets.defs.constants import kline_asset_key


def kline_job_name(interval: str, checks_only: bool = False) -> str:
    return f"klines_{interval}_checks_job" if checks_only else f"klines_{interval}_job"


def build_kline_jobs(intervals: tuple[str, ...]) -> list:
    """Partitioning comes from the assets (day x symbol)."""
    jobs = []
    for interval in intervals:
        key = kline_asset_key(interval)
        jobs.append(dg.define_asset_job(
            kline_job_name(interval), selection=dg.AssetSelection.assets(key),
            description=f"{key.to_user_string()} and its checks (the CLI's `download --in-dagster` runs).",
        ))
        jobs.append(dg.define_asset_job(
            kline_job_name(interval, checks_only=True), selection=dg.AssetSelection.checks_for_assets(key),
            description=f"The checks of {key.to_user_string()} on stored days, nothing loaded (`marketdata audit`).",
        ))
    return jobs
