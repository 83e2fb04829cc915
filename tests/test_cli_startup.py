"""`marketdata --help` and `marketdata <command> --help` stay light (issue 10): no pandas, SQLAlchemy,
Dagster, pandera, numpy, httpx or psycopg imported; the one-line helps kept in cli/main.COMMANDS equal the
commands' own, and the names the light modules keep for help texts equal the heavy modules' ones.

Each help runs in a fresh interpreter (a subprocess), so that sys.modules shows what that help imported.
No timing here: bench/bench_cli_startup.py measures the wall times.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
from datetime import UTC, datetime

import click
import pytest
from click.testing import CliRunner

from marketdata_assets.cli import main as cli_main
from marketdata_assets.cli.main import COMMANDS, LazyGroup, cli

HEAVY = ("pandas", "sqlalchemy", "dagster", "pandera", "numpy", "httpx", "psycopg", "pyarrow", "polars",
         "aiohttp", "websockets", "picows", "alembic")

PROBE = """
import json, sys
from marketdata_assets.cli.main import cli
heavy = set(json.loads(sys.argv[1]))
try:
    code = cli(json.loads(sys.argv[2]), prog_name="marketdata", standalone_mode=False)
except SystemExit as exc:  # argparse (`marketdata sim --help`) exits by itself
    code = exc.code
sys.stdout.flush()
# modules loaded from files: the stand-in for httpx's CLI (marketdata_assets/__init__.py) is not httpx
loaded = sorted(heavy & {name.split(".")[0] for name, m in sys.modules.items() if getattr(m, "__file__", None)})
print("\\nPROBE " + json.dumps({"code": code or 0, "heavy": loaded}))
"""

HELP_CASES = [[], *([name] for name in COMMANDS), ["db", "upgrade"], ["db", "current"]]


@pytest.mark.parametrize("args", HELP_CASES, ids=lambda args: " ".join(["marketdata", *args, "--help"]))
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), json.dumps([*args, "--help"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    help_text, _, probe = proc.stdout.rpartition("\nPROBE ")
    result = json.loads(probe)
    assert result["code"] == 0, proc.stdout + proc.stderr
    assert result["heavy"] == [], f"{' '.join(args)} --help imported {result['heavy']}"
    assert "usage" in help_text.lower()


def _real_short_help(command: click.Command) -> str:
    """What click shortens for the listing: short_help, else the first paragraph of the help."""
    if command.short_help:
        return inspect.cleandoc(command.short_help)
    return " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_static_short_help_equals_the_commands_own(name: str) -> None:
    command = LazyGroup._load(name)
    assert command is not None, f"{name}: {COMMANDS[name].target} not found"
    assert command.name == name
    assert COMMANDS[name].short_help == _real_short_help(command), (
        f"cli/main.COMMANDS[{name!r}] is out of date with the command's docstring")


def test_listing_equals_clicks_own_with_every_command_imported() -> None:
    # a plain click group holding the real commands renders what `marketdata --help` must show
    plain = click.Group("marketdata", params=cli.params, help=cli.help,
                        commands={name: LazyGroup._load(name) for name in COMMANDS})
    for width in (80, 120, 50):
        ours = CliRunner().invoke(cli, ["--help"], prog_name="marketdata", terminal_width=width)
        theirs = CliRunner().invoke(plain, ["--help"], prog_name="marketdata", terminal_width=width)
        assert ours.exit_code == 0 and theirs.exit_code == 0
        assert ours.output == theirs.output


def test_a_command_whose_module_is_absent_is_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = dict(COMMANDS)
    commands["ghost"] = cli_main.CommandEntry("marketdata_assets.cli.no_such_module:ghost_command", "Boo.")
    commands["ghost2"] = cli_main.CommandEntry("no_such_package.cli:ghost_command", "Boo.")
    monkeypatch.setattr(cli_main, "COMMANDS", commands)
    listing = CliRunner().invoke(cli, ["--help"], prog_name="marketdata")
    assert listing.exit_code == 0
    assert "ghost" not in listing.output and "download" in listing.output
    result = CliRunner().invoke(cli, ["ghost", "--help"], prog_name="marketdata")
    assert result.exit_code == 2 and "No such command 'ghost'" in result.output


def test_export_help_names_equal_the_export_modules() -> None:
    from marketdata_assets.cli import export as export_cli
    from marketdata_assets.export import table_names
    from marketdata_assets.export.writer import FORMATS

    assert list(export_cli.TABLE_NAMES) == table_names()
    assert export_cli.FORMATS == FORMATS


def test_light_today_utc_equals_the_loaders() -> None:
    from marketdata_assets.cli.options import today_utc
    from marketdata_assets.ingest.klines import today_utc as loader_today_utc

    for ms in (0, 1_704_067_199_999, 1_704_067_200_000, 1_735_689_600_123):
        assert today_utc(ms) == loader_today_utc(ms)
    assert today_utc() == datetime.now(UTC).date() == loader_today_utc()


def test_sim_help_without_the_simulator_equals_its_own() -> None:
    from marketdata_sim.cli import add_arguments

    parser = argparse.ArgumentParser(prog="marketdata sim", description="local Binance USD-M simulator")
    add_arguments(parser)
    proc = subprocess.run([sys.executable, "-m", "marketdata_assets.cli.main", "sim", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == parser.format_help().split()


def test_the_http_clients_load_without_the_httpx_command_line_tool():
    """httpx imports its CLI (click, rich, pygments) unless marketdata_assets left it out first: 80 ms of
    every process that talks to the exchange. The clients still work (tests/test_rest_client.py)."""
    probe = ("import sys, json; import marketdata_assets.binance.rest, marketdata_assets.binance.archive; "
             "import httpx\ntry:\n    httpx.main()\nexcept RuntimeError as exc:\n    said = str(exc)\n"
             "print(json.dumps([sorted({'rich', 'pygments'} & {m.split('.')[0] for m in sys.modules}), said]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded, said = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [] and "not loaded in marketdata processes" in said
