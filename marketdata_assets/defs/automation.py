"""Which sensors and schedules run by default, in one place.

On by default: what only acts on data the user chose to load, or costs next to nothing (symbol_discovery:
one exchangeInfo request an hour; the repair sensors and archive_settlement: only partitions already
loaded; audit_stored_data: reads the local store; the stream sensors: only when a sidecar runs). Off by
default: what loads from the exchange on its own every day or hour (daily_refresh, ticker_24h_hourly), so
that `make run` against real Binance fetches nothing unasked. MARKETDATA_AUTOMATION=all (what `make demo`
sets) turns everything on; any of them can be turned on or off on the UI's Automation page, which the
instance remembers.
"""

from __future__ import annotations

import dagster as dg

OFF_BY_DEFAULT = frozenset({"daily_refresh", "ticker_24h_hourly"})


def schedule_status(name: str, mode: str) -> dg.DefaultScheduleStatus:
    """The default status of schedule `name` under automation `mode`."""
    on = mode == "all" or name not in OFF_BY_DEFAULT
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED
