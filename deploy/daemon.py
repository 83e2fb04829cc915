"""`dagster-daemon` with a shorter backfill loop: `python deploy/daemon.py run -w workspace.yaml`.

Why: Dagster 1.13 runs the backfill daemon every 30 s, fixed (`DEFAULT_DAEMON_INTERVAL_SECONDS` in
dagster/_daemon/controller.py, read by `execute_backfill_iteration_loop`; no instance setting exists).
An asset backfill waits up to one interval before its runs are submitted and up to one more after they
end before it is marked complete: 30-60 s on top of the work, however fast the work is. This entry point
sets that constant (MARKETDATA_BACKFILL_INTERVAL_SECONDS, default 5) and then runs the stock daemon CLI.
It is a private constant of a pinned Dagster version: tests/test_defs_instance.py fails if it moves.
The asset daemon's own default interval reads the same constant, so dagster.postgres.yaml pins
`auto_materialize: minimum_interval_seconds` to keep that one at 30 s.
"""

from __future__ import annotations

import os
import sys

DEFAULT_INTERVAL_SECONDS = 5


def backfill_interval_seconds() -> int:
    raw = os.environ.get("MARKETDATA_BACKFILL_INTERVAL_SECONDS", str(DEFAULT_INTERVAL_SECONDS))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 30:
        sys.exit(f"MARKETDATA_BACKFILL_INTERVAL_SECONDS={raw!r}: expected whole seconds, 1..30")
    return value


def main() -> None:
    from dagster._daemon import controller

    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = backfill_interval_seconds()
    from dagster._daemon.cli import main as daemon_main

    daemon_main()


if __name__ == "__main__":
    main()
