"""A re-run asks the archive (almost) nothing, and still catches a file Binance rewrote (SPEC C.2).

Through `marketdata download` against the local Binance, whose clock moves and whose `republished` fault
rewrites a file (same rows zipped anew: a new checksum, a new LastModified): a settled day confirmed this
month costs no request; a month later one bucket listing vouches for the year and finds the rewritten file,
whose day alone is fetched again; `--verify` asks every day's .CHECKSUM.
"""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from marketdata_assets.binance.archive import archive_path
from marketdata_assets.binance.intervals import DAY_MS, day_start_ms
from marketdata_assets.cli.main import cli
from marketdata_assets.storage.tables import partition_ledger

DAYS = ("--start", "2024-02-01", "--end", "2024-02-20")
REWRITTEN = date(2024, 2, 12)


@pytest.fixture
def run(sim, tmp_path, monkeypatch):
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    database = tmp_path / "md.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(cli, ["download", "--no-progress", "--symbols", "BTCUSDT", "--intervals", "1h",
                                          *DAYS, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    invoke.engine = sa.create_engine(f"sqlite:///{database}")
    return invoke


def archive_asked(sim, before: dict) -> dict[str, int]:
    now = sim.stats()
    return {name: now[f"archive_{name}_requests"] - before[f"archive_{name}_requests"]
            for name in ("listing", "checksum")} | {"all": now["archive_requests"] - before["archive_requests"]}


def ledger(run) -> dict[date, tuple[str, object]]:
    t = partition_ledger.c
    with run.engine.connect() as conn:
        return {r.day: (r.archive_checksum, r.archive_checked_at)
                for r in conn.execute(sa.select(t.day, t.archive_checksum, t.archive_checked_at))}


def test_a_rerun_asks_nothing_a_month_later_one_listing_finds_the_rewritten_file(run, sim):
    first = run()
    assert "20 day(s) stored" in first
    loaded = ledger(run)
    assert all(checksum and checked for checksum, checked in loaded.values())

    before = sim.stats()
    again = run()
    assert archive_asked(sim, before) == {"listing": 0, "checksum": 0, "all": 0}
    assert "20 skipped: unchanged (archive checksum as recorded: 20 not asked (confirmed within 30 days)" in again

    # a month on, Binance rewrites one day's file
    sim.set_now(sim.market.now_ms + 31 * DAY_MS)
    sim.set_faults(republished=[archive_path("klines", "BTCUSDT", REWRITTEN, interval="1h")])
    before = sim.stats()
    later = run()
    # one listing page for the folder; the rewritten day alone: its .CHECKSUM (differs), then its zip
    assert archive_asked(sim, before) == {"listing": 1, "checksum": 1, "all": 3}
    assert "1 day(s) stored; 19 skipped: unchanged (archive checksum as recorded: 19 by the bucket listing" in later
    assert "rows inserted 0, updated 0, identical 24" in later
    relisted = ledger(run)
    assert relisted[REWRITTEN][0] != loaded[REWRITTEN][0]
    assert all(relisted[d][0] == loaded[d][0] and relisted[d][1] > loaded[d][1] for d in loaded if d != REWRITTEN)

    # confirmed again by that listing: the next re-run asks nothing; --verify asks every .CHECKSUM
    before = sim.stats()
    run()
    assert archive_asked(sim, before)["all"] == 0
    verified = run("--verify")
    assert archive_asked(sim, before) == {"listing": 0, "checksum": 20, "all": 20}
    assert "20 by their .CHECKSUM" in verified


def test_recent_days_ask_their_checksum_on_every_run(run, sim):
    """A day less than a week old may still be corrected: its .CHECKSUM is asked each time."""
    sim.set_now(day_start_ms(date(2024, 2, 24)) + 12 * 3_600_000)
    run()
    before = sim.stats()
    out = run()
    recent = 4  # 2024-02-17 .. 2024-02-20: within 7 days of 2024-02-24
    assert archive_asked(sim, before) == {"listing": 0, "checksum": recent, "all": recent}
    assert f"16 not asked (confirmed within 30 days), {recent} by their .CHECKSUM" in out
