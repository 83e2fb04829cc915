"""The code location as Dagster loads it, its configuration, and the `marketdata gaps` / `backfill` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.defs import build_definitions
from marketdata_assets.defs.config import CodeLocationConfig
from marketdata_assets.defs.constants import BINANCE_POOL, kline_asset_key

ROOT = Path(__file__).resolve().parents[1]


def test_default_location_has_one_asset_per_interval_with_pool_policy_and_checks():
    defs = build_definitions(CodeLocationConfig())
    graph = defs.resolve_asset_graph()
    for interval in ("1m", "5m", "15m", "1h", "4h", "1d"):
        key = kline_asset_key(interval)
        assets_def = defs.get_assets_def(key)
        assert assets_def.backfill_policy == dg.BackfillPolicy.multi_run(366)
        assert assets_def.op.pool == BINANCE_POOL
        assert isinstance(assets_def.partitions_def, dg.MultiPartitionsDefinition)
        assert dg.AssetKey("exchange_info") in graph.get(key).parent_keys
        names = {k.name for k in graph.get(key).check_keys}
        assert {"rows", "gaps", "continuity"} <= names
        assert ("agrees_with_1m" in names) == (interval != "1m")
    assert {s.name for s in defs.sensors} == {
        "symbol_discovery", "gap_repair", "archive_settlement", "stream_monitor", "stream_gap_repair",
        "gap_repair_price_klines", "gap_repair_funding_rates", "gap_repair_agg_trades",
        "gap_repair_metrics", "gap_repair_book_depth",
    }
    assert {s.name for s in defs.schedules} == {"daily_refresh", "ticker_24h_hourly", "audit_stored_data"}


def test_configuration_from_environment_and_file(tmp_path):
    config_file = tmp_path / "marketdata.toml"
    config_file.write_text('symbols = ["BTCUSDT", "SOLUSDT"]\nintervals = "1m,1h"\nstart_date = "2024-01-01"\n')
    config = CodeLocationConfig.from_env({"MARKETDATA_CONFIG": str(config_file), "MARKETDATA_INTERVALS": "5m 1d",
                                          "MARKETDATA_DAYS_PER_RUN": "31"})
    assert config.symbols == ("BTCUSDT", "SOLUSDT")
    assert config.intervals == ("5m", "1d")  # the environment wins over the file
    assert (config.start_date, config.days_per_run) == (date(2024, 1, 1), 31)
    defs = build_definitions(config)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    # other datasets (funding, trades, ...) have their own assets; the kline ones follow the intervals
    assert {k for k in keys if k.startswith("klines_") or k == "exchange_info"} == {
        "exchange_info", "klines_5m", "klines_1d"}


@pytest.mark.parametrize("env, needle", [
    ({"MARKETDATA_INTERVALS": "1m,2m"}, "'2m'"),
    ({"MARKETDATA_SYMBOLS": "btc-usdt"}, "BTC-USDT"),
    ({"MARKETDATA_START_DATE": "2024-13-01"}, "2024-13-01"),
    ({"MARKETDATA_DAYS_PER_RUN": "many"}, "MARKETDATA_DAYS_PER_RUN"),
])
def test_bad_configuration_names_the_input(env, needle):
    with pytest.raises(InvalidInputError, match=needle):
        CodeLocationConfig.from_env(env)


def test_dagster_definitions_validate_passes(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful" in result.stderr + result.stdout


def test_gaps_command_lists_days_needing_attention_from_the_ledger(tmp_path):
    from marketdata_assets.cli.gaps import gaps_command
    from marketdata_assets.storage.engine import make_engine
    from marketdata_assets.storage.migrate import upgrade
    from marketdata_assets.storage.repository import LedgerRow, MarketDataRepository
    from marketdata_assets.validation.gaps import EXCHANGE_GAP, FILLABLE, Gap

    url = f"sqlite:///{tmp_path / 'md.db'}"
    engine = make_engine(url)
    upgrade(engine)
    start = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
    repo = MarketDataRepository(engine)
    repo.upsert_ledger([
        LedgerRow("klines", "BTCUSDT", "1h", date(2024, 3, 1), 24, 24, "complete", sources={"archive": 24},
                  archive_checksum="a" * 64, check_status="passed"),
        LedgerRow("klines", "BTCUSDT", "1h", date(2024, 3, 2), 24, 22, "complete",
                  missing=[Gap("1h", start + 86_400_000, start + 86_400_000 + 7_200_000, EXCHANGE_GAP)],
                  sources={"rest": 22}, check_status="warning"),
        LedgerRow("klines", "ETHUSDT", "1h", date(2024, 3, 2), 24, 23, "complete",
                  missing=[Gap("1h", start + 86_400_000, start + 86_400_000 + 3_600_000, FILLABLE)],
                  sources={"rest": 23}, check_status="failed", repair_attempts=2),
    ])
    engine.dispose()
    runner = CliRunner()
    result = runner.invoke(gaps_command, ["--database-url", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert not any("2024-03-01" in line for line in lines)
    assert any("BTCUSDT" in line and "2024-03-02" in line and "warning" in line for line in lines)
    assert any("ETHUSDT" in line and "failed" in line for line in lines)
    assert "1 fillable bar(s), 2 exchange-gap bar(s)" in result.output

    as_json = runner.invoke(gaps_command, ["--database-url", url, "--symbols", "ETHUSDT", "--json"])
    import json

    report = json.loads(as_json.output)
    assert [(r["symbol"], r["fillable_bars"], r["repairs"]) for r in report] == [("ETHUSDT", 1, 2)]
    every = json.loads(runner.invoke(gaps_command, ["--database-url", url, "--all", "--json"]).output)
    assert len(every) == 3


@pytest.mark.parametrize("args, needle", [
    (["--symbols", "BTCUSDT", "--intervals", "2m", "--start", "2024-01-01"], "'2m'"),
    (["--symbols", "BTCUSDT", "--intervals", "1h", "--start", "2024-02-01", "--end", "2024-01-01"], "before"),
    (["--symbols", "BTCUSDT", "--intervals", "1h", "--start", "2024-01-01", "--end",
      (datetime.now(UTC).date() + timedelta(days=3)).isoformat()], "not a complete UTC day"),
    (["--symbols", "BTC USDT!", "--intervals", "1h", "--days", "3"], "invalid symbol"),
])
def test_backfill_command_rejects_bad_input_before_contacting_dagster(args, needle):
    from marketdata_assets.cli.backfill import backfill_command

    result = CliRunner().invoke(backfill_command, [*args, "--dagster-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert needle in result.output


def test_backfill_command_reports_an_unreachable_dagster():
    from marketdata_assets.cli.backfill import backfill_command

    result = CliRunner().invoke(backfill_command, ["--symbols", "BTCUSDT", "--intervals", "1h", "--start",
                                                   "2024-01-01", "--end", "2024-01-02",
                                                   "--dagster-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach Dagster at http://127.0.0.1:9/graphql" in result.output


def test_automation_defaults_fetch_nothing_unasked_and_all_turns_everything_on():
    def statuses(mode: str) -> dict[str, str]:
        defs = build_definitions(CodeLocationConfig.from_env({"MARKETDATA_AUTOMATION": mode}))
        return {s.name: s.default_status.value for s in [*defs.sensors, *defs.schedules]}

    default = statuses("default")
    assert {name for name, status in default.items() if status == "STOPPED"} == {"daily_refresh",
                                                                                  "ticker_24h_hourly"}
    assert set(statuses("all").values()) == {"RUNNING"}
    with pytest.raises(InvalidInputError, match="MARKETDATA_AUTOMATION='sometimes'"):
        CodeLocationConfig.from_env({"MARKETDATA_AUTOMATION": "sometimes"})
