"""What a user reads in the Dagster UI, in a real browser (Debian's chromium), against a real webserver and
daemon on a scratch instance, the local Binance and a SQLite market-data store (tests/support/ui.py).

The walk: a 3-day range run and the simulator's outage day are loaded with `marketdata backfill`; each
partition page shows that day's own figures (not the run's); the `gaps` check's partition view counts the
three clean days as passed and the outage day as a warning; five rows deleted by hand are found by
`marketdata audit`, the `gap_repair` sensor re-runs that partition, and the audit then passes.

Screenshots go to test-artifacts/ui/; with MARKETDATA_UPDATE_SCREENSHOTS=1 the README's two are rewritten
(docs/img/partition_view.png, docs/img/check_health.png).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.ui import ROOT, UI_INTERVAL, UI_SYMBOL, UiStack, shot, wait_until

pytestmark = pytest.mark.xdist_group("ui_browser")

ASSET = f"klines_{UI_INTERVAL}"
RANGE = ("2024-01-01", "2024-01-03")
OUTAGE_DAY = "2024-02-10"  # the simulator's default outage: 06:35-07:00 UTC, missing at the exchange too
DAMAGED_DAY = "2024-01-02"
DELETED_ROWS = 5


def _key(day: str) -> str:
    return f"{day}|{UI_SYMBOL}"


def _ms(day: str, hour: int = 0) -> int:
    return int(datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp() * 1000)


def _backfill(stack: UiStack, start: str, end: str) -> None:
    done = stack.marketdata("backfill", "--symbols", UI_SYMBOL, "--intervals", UI_INTERVAL, "--start", start,
                            "--end", end, "--dagster-url", stack.url, "--wait", "--timeout", "300", timeout=360)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "COMPLETED_SUCCESS" in done.stdout, done.stdout


def _archive_checksum(stack: UiStack, day: str) -> str:
    """The sha256 the archive publishes for the day (what the partition page must show)."""
    url = (f"{stack.env['BINANCE_ARCHIVE_URL']}/data/futures/um/daily/klines/{UI_SYMBOL}/{UI_INTERVAL}/"
           f"{UI_SYMBOL}-{UI_INTERVAL}-{day}.zip.CHECKSUM")
    return httpx.get(url, timeout=10).raise_for_status().text.split()[0]


def _first_bar_open(stack: UiStack, day: str) -> str:
    with sqlite3.connect(stack.db_path) as conn:
        (price,) = conn.execute(
            "SELECT open FROM kline_data WHERE symbol = ? AND interval = ? AND open_time = ?",
            (UI_SYMBOL, UI_INTERVAL, _ms(day))).fetchone()
    return price


def _open_check(page, stack: UiStack, check: str, tab: str) -> None:
    page.goto(f"{stack.url}/assets/{ASSET}?view=checks&checkDetail={check}")
    page.get_by_role("tab", name="Execution history").wait_for()  # the check's own tabs, after the asset's
    page.get_by_role("tab", name=tab).last.click()


def _history_row(page, description: str):
    """The check's Execution history row whose description starts with `description`."""
    return page.get_by_role("row").filter(has_text=description).first


def _keep_for_readme(path, name: str) -> None:
    if os.environ.get("MARKETDATA_UPDATE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "img" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)


SWITCHES_JS = """(names) => Array.from(document.querySelectorAll('label[class*=formatSwitch] input')).map(e => {
  // the switch's row: its nearest ancestor with a line naming a sensor or schedule (the nearest one with any
  // text can be a cell of its own, such as the last tick time of a sensor that has ticked)
  const linesOf = el => el.innerText.split('\\n').map(line => line.trim());
  let row = e.closest('label').parentElement;
  while (row && !linesOf(row).some(line => names.includes(line))) row = row.parentElement;
  return [row ? linesOf(row) : [], e.checked, e.disabled];
})"""


def _automation_switches(page, names: set[str]) -> dict[str, bool] | None:
    """{sensor or schedule: its switch is on} once the Automation page shows every one of `names` enabled."""
    found = {}
    for lines, checked, disabled in page.evaluate(SWITCHES_JS, sorted(names)):
        name = next((line for line in lines if line in names), None)
        if name is None or disabled:
            return None
        found[name] = checked
    return found if set(found) == names else None


def test_automation_page_shows_what_runs_by_default(ui_stack: UiStack, ui_page) -> None:
    """`make run`'s defaults (defs/automation.py): nothing that loads from the exchange on its own is on."""
    page = ui_page
    (repository,) = ui_stack.graphql(AUTOMATION_QUERY)["workspaceOrError"]["locationEntries"][0][
        "locationOrLoadError"]["repositories"]
    names = {s["name"] for s in [*repository["sensors"], *repository["schedules"]]}
    page.goto(f"{ui_stack.url}/automation")
    switches = wait_until("the Automation page's switches", lambda: _automation_switches(page, names), timeout_s=60)
    assert {name for name, on in switches.items() if not on} == {"daily_refresh", "ticker_24h_hourly"}
    assert len(switches) == 13
    _keep_for_readme(shot(page, "automation"), "automation")


DISCOVERY_TICKS = """{ sensorOrError(sensorSelector: {repositoryName: "__repository__",
  repositoryLocationName: "marketdata", sensorName: "symbol_discovery"}) {
  ... on Sensor { sensorState { ticks(limit: 5) { status timestamp } } } } }"""


def _discovery_ticks(stack: UiStack) -> list[dict]:
    return stack.graphql(DISCOVERY_TICKS)["sensorOrError"]["sensorState"]["ticks"]


SYMBOL_KEYS = f"""{{ assetNodeOrError(assetKey: {{path: ["{ASSET}"]}}) {{
  ... on AssetNode {{ partitionKeysByDimension {{ name partitionKeys }} }} }} }}"""


def _symbols(stack: UiStack) -> list[str]:
    """The `symbols` partitions as the webserver serves them to the UI."""
    dimensions = stack.graphql(SYMBOL_KEYS)["assetNodeOrError"]["partitionKeysByDimension"]
    return next(d["partitionKeys"] for d in dimensions if d["name"] == "symbol")


def test_a_symbol_added_in_the_materialize_dialog_survives_discovery(ui_stack: UiStack, ui_page) -> None:
    """"Add a partition" in the Materialize dialog: the next symbol_discovery tick keeps the symbol (only
    what the exchange delisted is removed), and the Partitions view lists it."""
    from playwright.sync_api import expect

    page = ui_page
    wait_until("symbol_discovery's first tick to add the configured symbol", lambda: UI_SYMBOL in _symbols(ui_stack),
               timeout_s=120)
    page.goto(f"{ui_stack.url}/assets/{ASSET}")
    page.get_by_role("button", name="Materialize…").click()
    add = page.get_by_role("button", name="Add a partition")
    confirm = page.get_by_role("button", name="Confirm")  # "upstream exchange_info not materialized" warning
    wait_until("the Materialize dialog", lambda: add.is_visible() or (confirm.is_visible() and confirm.click()),
               timeout_s=30)
    add.click()
    page.get_by_placeholder("name").fill("SOLUSDT")
    page.get_by_role("button", name="Save").click()
    wait_until("SOLUSDT in the symbols partitions", lambda: "SOLUSDT" in _symbols(ui_stack), timeout_s=30)
    added_at = datetime.now(UTC).timestamp()
    # the "Add a partition" dialog closes once its save returns, which may be after the partition shows in
    # GraphQL; until then its Cancel and the Materialize dialog's are both on the page
    expect(page.get_by_placeholder("name")).to_be_hidden(timeout=30_000)
    page.get_by_role("button", name="Cancel").click()

    wait_until("a symbol_discovery tick after the symbol was added",
               lambda: any(t["timestamp"] > added_at and t["status"] in ("SKIPPED", "SUCCESS")
                           for t in _discovery_ticks(ui_stack)), timeout_s=180, poll_s=2)
    assert "SOLUSDT" in _symbols(ui_stack)
    page.goto(f"{ui_stack.url}/assets/{ASSET}?view=partitions")
    expect(page.get_by_text("SOLUSDT", exact=True).first).to_be_visible()
    shot(page, "added_symbol_kept")


AUTOMATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError {
  ... on RepositoryLocation { repositories { sensors { name } schedules { name } } } } } } } }"""


@pytest.fixture(scope="module")
def loaded(ui_stack: UiStack) -> UiStack:
    """The range run first, then the outage day in a run of its own (it is the newest materialization)."""
    _backfill(ui_stack, *RANGE)
    _backfill(ui_stack, OUTAGE_DAY, OUTAGE_DAY)
    return ui_stack


def test_a_partition_of_a_range_run_shows_its_own_day(loaded: UiStack, ui_page) -> None:
    from playwright.sync_api import expect

    page = ui_page
    page.goto(f"{loaded.url}/assets/{ASSET}?view=partitions&partition={_key(DAMAGED_DAY).replace('|', '%7C')}")
    detail = page.locator("main, body").first
    expect(page.get_by_text("Latest materialization").first).to_be_visible()
    metadata = {name: page.get_by_role("row").filter(has_text=name).first for name in
                ("dagster/row_count", "expected_rows", "archive_checksum", "first_open_time", "last_open_time",
                 "preview")}
    expect(metadata["dagster/row_count"]).to_contain_text("1440")
    expect(metadata["expected_rows"]).to_contain_text("1440")
    expect(metadata["archive_checksum"]).to_contain_text(_archive_checksum(loaded, DAMAGED_DAY))
    expect(metadata["first_open_time"]).to_contain_text("Jan 2, 2024, 12:00:00 AM UTC")
    expect(metadata["last_open_time"]).to_contain_text("Jan 2, 2024, 11:59:00 PM UTC")
    # the preview is this day's first and last bars, not the run's last day
    first_bar = metadata["preview"].get_by_role("row").filter(has_text=f"{DAMAGED_DAY} 00:00:00+00:00")
    expect(first_bar.get_by_role("cell").nth(1)).to_have_text(_first_bar_open(loaded, DAMAGED_DAY))
    expect(metadata["preview"]).not_to_contain_text("2024-01-03")
    expect(detail).not_to_contain_text("4320")
    _keep_for_readme(shot(page, "partition_view"), "partition_view")

    # the asset's Partitions view: four days materialized, all green (an exchange gap is no failure)
    expect(page.get_by_text("Materialized (4)")).to_be_visible()
    expect(page.get_by_text("Failed (0)")).to_be_visible()


def test_the_gaps_check_counts_each_partition_and_warns_on_an_exchange_gap(loaded: UiStack, ui_page) -> None:
    from playwright.sync_api import expect

    page = ui_page
    _open_check(page, loaded, "gaps", "Partitions")
    expect(page.get_by_text("Passed (3)")).to_be_visible()
    expect(page.get_by_text("Failed (1)")).to_be_visible()  # Dagster counts a WARN-severity failure here
    shot(page, "gaps_partitions")

    _open_check(page, loaded, "gaps", "Execution history")
    outage = _history_row(page, f"{_key(OUTAGE_DAY)}: 25 bar(s) missing at the exchange too")
    expect(outage).to_contain_text("recorded, not retried")
    expect(outage.get_by_role("img", name="warning_outline")).to_be_visible()  # yellow, not red
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        clean = _history_row(page, f"{_key(day)}: no gaps")
        expect(clean).to_contain_text("Passed")
        expect(clean.get_by_role("img", name="check_circle")).to_be_visible()
    _keep_for_readme(shot(page, "check_health"), "check_health")


def _repair_run(stack: UiStack, partition: str) -> dict | None:
    runs = stack.graphql(
        """query ($filter: RunsFilter) { runsOrError(filter: $filter) {
             ... on Runs { results { runId status tags { key value } } } } }""",
        {"filter": {"tags": [{"key": "dagster/sensor_name", "value": "gap_repair"},
                             {"key": "dagster/partition", "value": partition}]}},
    )["runsOrError"]["results"]
    return runs[0] if runs else None


def test_rows_deleted_by_hand_are_found_by_the_audit_and_repaired_by_the_sensor(loaded: UiStack, ui_page) -> None:
    from playwright.sync_api import expect

    page = ui_page
    with sqlite3.connect(loaded.db_path) as conn:
        deleted = conn.execute(
            "DELETE FROM kline_data WHERE symbol = ? AND interval = ? AND open_time >= ? AND open_time < ?",
            (UI_SYMBOL, UI_INTERVAL, _ms(DAMAGED_DAY, 12), _ms(DAMAGED_DAY, 12) + DELETED_ROWS * 60_000)).rowcount
    assert deleted == DELETED_ROWS

    audit = loaded.marketdata("audit", "--symbols", UI_SYMBOL, "--intervals", UI_INTERVAL, "--start", DAMAGED_DAY)
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert (f"FAILED {ASSET} {_key(DAMAGED_DAY)} audit: {DELETED_ROWS} row(s) lost since the load: "
            f"the ledger records 1440, the table holds {1440 - DELETED_ROWS}") in audit.stdout, audit.stdout
    assert "1 failed" in audit.stdout.splitlines()[-1]

    _open_check(page, loaded, "audit", "Execution history")
    expect(_history_row(page, f"{_key(DAMAGED_DAY)}: {DELETED_ROWS} row(s) lost since the load")).to_contain_text(
        "Failed")

    run = wait_until("the gap_repair sensor's run of the damaged partition to succeed",
                     lambda: (r := _repair_run(loaded, _key(DAMAGED_DAY))) and r["status"] == "SUCCESS" and r,
                     timeout_s=300, poll_s=2)
    with sqlite3.connect(loaded.db_path) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM kline_data WHERE symbol = ? AND interval = ? AND "
                               "open_time >= ? AND open_time < ?",
                               (UI_SYMBOL, UI_INTERVAL, _ms(DAMAGED_DAY), _ms(DAMAGED_DAY) + 86_400_000)).fetchone()
    assert rows == 1440

    # the repair run's own audit of the partition passed, and the run is on the Runs page with its reason
    _open_check(page, loaded, "audit", "Execution history")
    newest = page.get_by_role("row").filter(has_text=_key(DAMAGED_DAY)).first
    expect(newest).to_contain_text("Passed")
    page.goto(f"{loaded.url}/runs/{run['runId']}")
    expect(page.get_by_text("gap_repair").first).to_be_visible()
    shot(page, "repair_run")

    after = loaded.marketdata("audit", "--symbols", UI_SYMBOL, "--intervals", UI_INTERVAL, "--start", DAMAGED_DAY)
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.splitlines()[-1] == "checked 1 partition(s) x 4 check(s): 1 passed, 0 with warnings, 0 failed"


RUNS_OF_JOB = """query ($job: String!) { runsOrError(filter: {pipelineName: $job}) {
  ... on Runs { results { runId status parentRunId } } } }"""


def test_a_cli_run_belongs_to_a_named_job_the_ui_re_executes(loaded: UiStack, ui_page) -> None:
    """`marketdata download --in-dagster` runs the code location's klines_1m_job: the run page links to the job
    and "Re-execute all" launches a new run of it that succeeds."""
    from playwright.sync_api import expect

    page = ui_page
    done = loaded.marketdata("download", "--symbols", UI_SYMBOL, "--intervals", UI_INTERVAL, "--start", "2024-01-05",
                             "--end", "2024-01-05", "--in-dagster", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    job = f"klines_{UI_INTERVAL}_job"
    (parent,) = loaded.graphql(RUNS_OF_JOB, {"job": job})["runsOrError"]["results"]
    page.goto(f"{loaded.url}/runs/{parent['runId']}")
    expect(page.locator(f"a[href$='/locations/marketdata/jobs/{job}']").first).to_be_visible()
    page.get_by_role("button", name="Re-execute all (*)").click()
    child = wait_until("the re-execution to succeed", lambda: next(
        (r for r in loaded.graphql(RUNS_OF_JOB, {"job": job})["runsOrError"]["results"]
         if r["parentRunId"] == parent["runId"] and r["status"] == "SUCCESS"), None), timeout_s=180, poll_s=2)
    page.goto(f"{loaded.url}/runs/{child['runId']}")
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
    shot(page, "cli_run_reexecuted")


def test_plots_graph_the_newest_partitions_figures(loaded: UiStack, ui_page) -> None:
    """Dagster plots a partitioned asset's numeric metadata over its newest 120 partition keys: recent days
    (the simulator's clock back to real time for them), graphed per partition."""
    from playwright.sync_api import expect

    page = ui_page
    loaded.sim.set_now(None)
    today = datetime.now(UTC).date()
    _backfill(loaded, str(today - timedelta(days=2)), str(today - timedelta(days=1)))
    page.goto(f"{loaded.url}/assets/{ASSET}")
    page.get_by_text("Plots", exact=True).first.click()
    expect(page.get_by_text("expected_rows", exact=True).first).to_be_visible()
    expect(page.get_by_text("Asset plots are automatically generated by metadata")).to_have_count(0)
    shot(page, "plots_by_partition")
