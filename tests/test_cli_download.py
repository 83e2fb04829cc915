"""`marketdata download` as a user runs it: exit code 2 naming bad input before any download; a closing
table of rows and gaps; a second run that changes nothing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from marketdata_assets.cli.main import cli


@pytest.fixture
def run(sim, tmp_path, monkeypatch):
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'md.db'}")

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["download", "--no-progress", *args], catch_exceptions=False)

    return invoke


def downloads(sim) -> int:
    stats = sim.stats()
    return stats["archive_requests"] + sum(n for path, n in stats["requests"].items() if "klines" in path.lower())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbols", "BTCUSDT", "FOOUSDT", "--start", "2024-03-01"], "unknown symbol 'FOOUSDT'"),
        (["--symbols", "btc-usdt", "--start", "2024-03-01"], "invalid symbol 'BTC-USDT'"),
        (["--symbols", "BTCUSDT", "--intervals", "1m", "7m", "--start", "2024-03-01"], "unknown interval '7m'"),
        (["--symbols", "BTCUSDT", "--start", "2024-03-05", "--end", "2024-03-01"], "before start date"),
        (["--symbols", "BTCUSDT", "--start", "2024-02-30"], "invalid date '2024-02-30'"),
        (["--symbols", "NEWUSDT", "--start", "2024-02-01"], "before NEWUSDT's listing on 2024-02-15"),
        (["--symbols", "BTCUSDT", "--start", "2024-03-01", "--end", "2024-04-05"], "2024-04-05: is in the future"),
        (["--symbols", "BTCUSDT", "--days", "2", "--fapi-url", "htp:/nowhere"], "BINANCE_FAPI_URL='htp:/nowhere'"),
    ],
)
def test_bad_input_exits_2_before_any_download(run, sim, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert downloads(sim) == 0


def test_download_prints_rows_and_gaps_and_a_rerun_changes_nothing(run, sim):
    first = run("--symbols", "BTCUSDT", "ETHUSDT", "--intervals", "1m", "1h",
                "--start", "2024-02-09", "--end", "2024-02-11")
    assert first.exit_code == 0, first.output
    lines = {tuple(line.split()[:2]): line.split() for line in first.output.splitlines() if "USDT" in line}
    # symbol interval days rows archive rest gaps gap-bars failed
    assert lines[("BTCUSDT", "1m")][2:] == ["3", str(3 * 1440 - 25), str(3 * 1440 - 25), "0", "1", "25", "0"]
    assert lines[("ETHUSDT", "1h")][2:] == ["3", "72", "72", "0", "0", "0", "0"]
    assert f"rows inserted {2 * (3 * 1440 - 25 + 72)}, updated 0" in first.output
    second = run("--symbols", "BTCUSDT", "ETHUSDT", "--intervals", "1m", "1h",
                 "--start", "2024-02-09", "--end", "2024-02-11")
    assert second.exit_code == 0, second.output
    assert "rows inserted 0, updated 0" in second.output
    assert ("0 day(s) stored; 12 skipped: unchanged (archive checksum as recorded: 12 not asked (confirmed "
            "within 30 days); --verify asks the archive again, --force reloads)") in second.output
    assert sim.stats()["count_418"] == 0


def test_source_rest_asks_no_archive_and_source_archive_no_rest(run, sim):
    """--source rest: every bar from REST; --source archive: no REST request, the outage's 25 missing bars
    are recorded as fillable (nobody asked the exchange) instead of an exchange gap."""
    rest = run("--symbols", "BTCUSDT", "--intervals", "1h", "--start", "2024-02-09", "--end", "2024-02-10",
               "--source", "rest")
    assert rest.exit_code == 0, rest.output
    assert sim.stats()["archive_requests"] == 0
    line = next(line.split() for line in rest.output.splitlines() if line.startswith("BTCUSDT"))
    assert line[2:6] == ["2", "48", "0", "48"]  # days rows archive rest

    before = sum(n for path, n in sim.stats()["requests"].items() if "klines" in path.lower())
    archive = run("--symbols", "BTCUSDT", "--intervals", "1m", "--start", "2024-02-10", "--end", "2024-02-10",
                  "--source", "archive")
    assert archive.exit_code == 0, archive.output
    assert sum(n for path, n in sim.stats()["requests"].items() if "klines" in path.lower()) == before
    line = next(line.split() for line in archive.output.splitlines() if line.startswith("BTCUSDT"))
    assert line[2:8] == ["1", str(1440 - 25), str(1440 - 25), "0", "0", "0"]  # no exchange gap claimed


def test_in_dagster_runs_the_assets_and_records_them_in_the_instance(run, sim, tmp_path, monkeypatch):
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    result = run("--symbols", "BTCUSDT", "--intervals", "1h", "--start", "2024-02-09", "--end", "2024-02-11",
                 "--in-dagster")
    assert result.exit_code == 0, result.output
    line = next(line.split() for line in result.output.splitlines() if line.startswith("BTCUSDT"))
    assert line[2:4] == ["3", "72"]
    with dg.DagsterInstance.get() as instance:
        materialized = instance.get_materialized_partitions(dg.AssetKey("klines_1h"))
        assert materialized == {f"2024-02-{d}|BTCUSDT" for d in ("09", "10", "11")}
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].tags["marketdata/reason"] == "download"
