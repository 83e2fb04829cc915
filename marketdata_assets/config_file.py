"""MARKETDATA_CONFIG: one TOML file holding any of the environment variables the README lists, read by every
command and by the Dagster code location alike; a variable set in the environment wins over the file.

Keys are the variable names, in any case (`DATABASE_URL = "..."`, `marketdata_symbols = ["BTCUSDT"]`); the
code location's keys also work without their `MARKETDATA_` prefix (`symbols`, `start_date`, ...), as
before. A key nobody reads is refused with its name, so a typo never passes silently. Standard library only:
the CLI reads it before anything heavy is imported.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from marketdata_assets.binance.intervals import InvalidInputError

CONFIG_VARIABLE = "MARKETDATA_CONFIG"
SETTINGS_VARIABLES = frozenset({
    "DATABASE_URL", "BINANCE_FAPI_URL", "BINANCE_ARCHIVE_URL", "BINANCE_ARCHIVE_LISTING_URL", "BINANCE_WS_URL",
    "BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_TESTNET", "DEFAULT_INTERVAL", "DEFAULT_DEPTH",
    "STORE_TO_DB", "PUBLISH_EVENTS", "MARKETDATA_STATE_DIR",
})
CODE_LOCATION_KEYS = frozenset({
    "symbols", "intervals", "start_date", "days_per_run", "repair_max_attempts", "repair_backoff_seconds",
    "audit_recent_days", "audit_cycle_days", "discovery_interval_seconds", "automation",
})
KNOWN = SETTINGS_VARIABLES | {f"MARKETDATA_{key.upper()}" for key in CODE_LOCATION_KEYS}


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def file_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The variables MARKETDATA_CONFIG's file sets ({} when unset), as environment strings."""
    path = env.get(CONFIG_VARIABLE)
    if not path:
        return {}
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"{CONFIG_VARIABLE}={path!r}: {exc}") from None
    out: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in raw.items():
        name = key.upper()
        if name not in KNOWN and key.lower() in CODE_LOCATION_KEYS:
            name = f"MARKETDATA_{key.upper()}"
        if name not in KNOWN:
            unknown.append(key)
        else:
            out[name] = _text(value)
    if unknown:
        raise InvalidInputError(f"{CONFIG_VARIABLE}={path!r}: unknown key(s) {', '.join(sorted(unknown))} "
                                f"(known: the variables of the README's Configuration table)")
    return out


def effective_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with MARKETDATA_CONFIG's file underneath it (a variable set in `env` wins)."""
    env = dict(os.environ if env is None else env)
    return {**file_variables(env), **{k: v for k, v in env.items() if v != ""}}
