"""A plain `marketdata download` (no Dagster run) recorded in the configured Dagster instance: each stored
day is its partition's materialization with that day's figures; `--in-dagster` refuses a throwaway one."""

from __future__ import annotations

import shutil

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner

from marketdata_assets.cli.main import cli
from tests.support.ui import ROOT

KEY = dg.AssetKey("klines_1h")


@pytest.fixture
def download(sim, tmp_path, monkeypatch):
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'md.db'}")
    monkeypatch.setenv("MARKETDATA_START_DATE", "2024-01-01")
    monkeypatch.setenv("MARKETDATA_INTERVALS", "1h")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")

    def invoke(*args: str, dagster_home: bool = True):
        if dagster_home:
            monkeypatch.setenv("DAGSTER_HOME", str(home))
        else:
            monkeypatch.delenv("DAGSTER_HOME", raising=False)
        return CliRunner().invoke(cli, ["download", "--no-progress", "--symbols", "BTCUSDT", "--intervals", "1h",
                                        *args])

    invoke.home = home
    return invoke


def test_each_stored_day_is_a_materialized_partition_with_its_own_figures(download, sim) -> None:
    done = download("--start", "2024-01-01", "--end", "2024-01-03")
    assert done.exit_code == 0, done.output
    assert f"recorded in Dagster (DAGSTER_HOME={download.home}): 3 partition(s) of klines_1h" in done.output

    with dg.DagsterInstance.from_config(str(download.home)) as instance:
        assert instance.get_dynamic_partitions("symbols") == ["BTCUSDT"]
        assert instance.get_materialized_partitions(KEY) == {f"2024-01-0{d}|BTCUSDT" for d in (1, 2, 3)}
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=KEY, asset_partitions=["2024-01-02|BTCUSDT"]), limit=1).records
        mat = records[0].asset_materialization
        checksum = httpx.get(f"{sim.url}/data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-02.zip.CHECKSUM",
                             timeout=10).text.split()[0]
        assert mat.metadata["dagster/row_count"].value == 24
        assert mat.metadata["archive_checksum"].value == checksum
        assert mat.tags["marketdata/reason"] == "download"

    again = download("--start", "2024-01-01", "--end", "2024-01-03")
    assert again.exit_code == 0, again.output
    assert "recorded in Dagster" in again.output and "nothing new" in again.output


def test_without_dagster_home_the_load_says_it_is_not_recorded_and_in_dagster_refuses(download) -> None:
    plain = download("--start", "2024-01-01", dagster_home=False)
    assert plain.exit_code == 0, plain.output
    assert "not recorded in Dagster: DAGSTER_HOME is not set" in plain.output

    refused = download("--start", "2024-01-01", "--in-dagster", dagster_home=False)
    assert refused.exit_code == 2
    assert "--in-dagster: DAGSTER_HOME is not set" in refused.output
