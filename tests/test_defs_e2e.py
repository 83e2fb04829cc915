"""End to end: `dagster dev` (webserver + daemon) on a PostgreSQL Dagster instance, the market data in
PostgreSQL, `marketdata backfill` for 2 symbols x 2 intervals x 31 days through GraphQL; every partition
materialized and every gaps check passed. Slow (daemon ticks every 30 s): `pytest -m slow`."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.db import PG_URL

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.postgres
def test_backfill_on_a_postgres_instance_materializes_every_partition_with_passing_checks():
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    try:
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        result = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "bench_dagster_backfill.py"),
             "--symbols", "BTCUSDT", "ETHUSDT", "--intervals", "1h", "5m",
             "--start", "2024-01-01", "--end", "2024-01-31",
             "--instance", "postgres", "--database-url", url, "--timeout", "600"],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "COMPLETED_SUCCESS" in result.stdout
        assert "PROBLEM" not in result.stdout
        from marketdata_assets.storage.engine import make_engine
        from marketdata_assets.storage.repository import MarketDataRepository

        engine = make_engine(PG_URL, schema=schema)
        repo = MarketDataRepository(engine)
        # 31 days x 2 symbols; January 2024 holds no outage window in the simulator
        assert (repo.count_klines(interval="1h"), repo.count_klines(interval="5m")) == (2 * 31 * 24, 2 * 31 * 288)
        assert {r.check_status for r in repo.get_ledger("klines")} == {"passed"}
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()
