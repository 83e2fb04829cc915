"""The error a failed schema raises, apart from the schemas: loaders name it in their day-error handling
without importing pandas and pandera (a re-run whose days are all unchanged validates nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class KlineValidationError(ValueError):
    """A kline frame broke the schema; `failures` holds pandera's failure cases (one row per offence)."""

    def __init__(self, label: str, failures: pd.DataFrame):
        import pandas as pd  # only once there are failure cases to describe

        self.failures = failures
        lines = []
        for _, row in failures.head(10).iterrows():
            where = f"row {int(row['index'])}" if pd.notna(row.get("index")) else "frame"
            if pd.notna(row.get("open_time")):
                where += f" (open_time {row['open_time']})"
            column = f"{row['column']}: " if pd.notna(row.get("column")) else ""
            value = f" (value {row['failure_case']!r})" if pd.notna(row.get("failure_case")) else ""
            lines.append(f"  {where}: {column}{row['check']}{value}")
        more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        super().__init__(f"{label}: {len(failures)} schema failure(s)\n" + "\n".join(lines) + more)
