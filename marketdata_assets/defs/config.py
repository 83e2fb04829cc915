"""What the code location serves: the symbol universe, the intervals, the first day, the run size.

Read once when the code location loads, from the environment or a TOML file, so that the partition
space is fixed per deployment (DESIGN.md section 3: keep each asset under 100,000 partitions by
configuring the universe instead of "every symbol since 2019").

Environment (all optional):
  MARKETDATA_CONFIG          a TOML file with the keys below (environment variables win over it)
  MARKETDATA_SYMBOLS         universe, e.g. "BTCUSDT,ETHUSDT" (spaces work too)
  MARKETDATA_INTERVALS       kline assets to build, e.g. "1m,5m,15m,1h,4h,1d"
  MARKETDATA_START_DATE      first daily partition, YYYY-MM-DD
  MARKETDATA_DAYS_PER_RUN    backfill chunk: days per run (BackfillPolicy.multi_run)
  MARKETDATA_REPAIR_MAX_ATTEMPTS, MARKETDATA_REPAIR_BACKOFF_SECONDS  gap repair bounds
  MARKETDATA_AUDIT_RECENT_DAYS   days up to yesterday the daily audit re-reads (default 3)
  MARKETDATA_AUDIT_CYCLE_DAYS    the audit sweeps the whole stored history once per this many days (30)
  MARKETDATA_DISCOVERY_INTERVAL_SECONDS  how often symbol_discovery asks exchangeInfo (3600)
  MARKETDATA_AUTOMATION      "default" (daily_refresh and ticker_24h_hourly off) or "all" (defs/automation.py)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from marketdata_assets.binance.intervals import (
    InvalidInputError,
    parse_day,
    validate_interval,
    validate_symbol,
)
from marketdata_assets.config_file import effective_env

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT")
DEFAULT_INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")
DEFAULT_START_DATE = date(2023, 1, 1)
# One symbol-year per run: a year must not be 365 runs, and each run costs a process start (~2-4 s).
DEFAULT_DAYS_PER_RUN = 366
MAX_PARTITIONS_PER_ASSET = 100_000
AUTOMATION_MODES = ("default", "all")  # which sensors and schedules start on: defs/automation.py


_INT_KEYS = ("days_per_run", "repair_max_attempts", "repair_backoff_seconds", "audit_recent_days",
             "audit_cycle_days", "discovery_interval_seconds")


def _split(value: str | list | tuple) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else str(value).replace(",", " ").split()
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


@dataclass(frozen=True)
class CodeLocationConfig:
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    intervals: tuple[str, ...] = DEFAULT_INTERVALS
    start_date: date = DEFAULT_START_DATE
    days_per_run: int = DEFAULT_DAYS_PER_RUN
    repair_max_attempts: int = 3
    repair_backoff_seconds: int = 600
    audit_recent_days: int = 3
    audit_cycle_days: int = 30
    automation: str = "default"
    discovery_interval_seconds: int = 3600

    def __post_init__(self) -> None:
        if not self.symbols:
            raise InvalidInputError("MARKETDATA_SYMBOLS is empty: configure at least one symbol")
        if not self.intervals:
            raise InvalidInputError("MARKETDATA_INTERVALS is empty: configure at least one interval")
        for symbol in self.symbols:
            validate_symbol(symbol)
        for interval in self.intervals:
            validate_interval(interval)
        if not 1 <= self.days_per_run <= 3660:
            raise InvalidInputError(f"MARKETDATA_DAYS_PER_RUN={self.days_per_run}: expected 1..3660")
        if self.repair_max_attempts < 0 or self.repair_backoff_seconds < 0:
            raise InvalidInputError("MARKETDATA_REPAIR_MAX_ATTEMPTS / _BACKOFF_SECONDS must be >= 0")
        if not 0 <= self.audit_recent_days <= 366:
            raise InvalidInputError(f"MARKETDATA_AUDIT_RECENT_DAYS={self.audit_recent_days}: expected 0..366")
        if not 30 <= self.discovery_interval_seconds <= 86_400:
            raise InvalidInputError(f"MARKETDATA_DISCOVERY_INTERVAL_SECONDS={self.discovery_interval_seconds}: "
                                    "expected 30..86400")
        if self.automation not in AUTOMATION_MODES:
            raise InvalidInputError(f"MARKETDATA_AUTOMATION={self.automation!r}: expected one of "
                                    f"{', '.join(AUTOMATION_MODES)} (defs/automation.py)")
        if not 1 <= self.audit_cycle_days <= 3660:
            raise InvalidInputError(f"MARKETDATA_AUDIT_CYCLE_DAYS={self.audit_cycle_days}: expected 1..3660")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CodeLocationConfig:
        env = effective_env(env)  # MARKETDATA_CONFIG's file (config_file.py) under the environment
        values: dict[str, object] = {}
        for key in ("symbols", "intervals", "start_date", "automation", *_INT_KEYS):
            name = f"MARKETDATA_{key.upper()}"
            if env.get(name):
                values[key] = env[name]
        kwargs: dict[str, object] = {}
        if "symbols" in values:
            kwargs["symbols"] = tuple(s.upper() for s in _split(values["symbols"]))  # type: ignore[arg-type]
        if "intervals" in values:
            kwargs["intervals"] = _split(values["intervals"])  # type: ignore[arg-type]
        if "automation" in values:
            kwargs["automation"] = str(values["automation"]).strip().lower()
        if "start_date" in values:
            kwargs["start_date"] = parse_day(values["start_date"])  # type: ignore[arg-type]
        for key in _INT_KEYS:
            if key in values:
                try:
                    kwargs[key] = int(values[key])  # type: ignore[call-overload]
                except (TypeError, ValueError):
                    raise InvalidInputError(
                        f"MARKETDATA_{key.upper()}={values[key]!r}: expected an integer"
                    ) from None
        return cls(**kwargs)  # type: ignore[arg-type]
