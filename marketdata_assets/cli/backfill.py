"""`marketdata backfill`: launch a kline backfill on a running Dagster (webserver GraphQL API).

The backfill runs in the Dagster deployment (daemon, run queue, `binance_api` pool, multi-run backfill
policy: one run per symbol and up to a year of days), so it survives this process and shows in the UI.
Symbols missing from the `symbols` partitions are added first. With `--wait` it polls until the backfill
ends and exits non-zero when it failed. `marketdata download` is the in-process counterpart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from marketdata_assets.binance.intervals import (
    InvalidInputError,
    days_between,
    parse_day,
    validate_interval,
    validate_symbol,
)
from marketdata_assets.cli.options import MultiValueOption

SYMBOLS_PARTITIONS_NAME = "symbols"  # defs.klines.partitions (not imported: the CLI stays Dagster-free)
DEFAULT_URL = "http://127.0.0.1:3000"
FINAL_STATUSES = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""
ADD_PARTITION = """
mutation Add($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on Error { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions runs(limit: 1000) { runId status } }
    ... on Error { message }
  }
}"""


class BackfillError(click.ClickException):
    """The Dagster webserver refused or failed a request; exit code 1 with its message."""


class DagsterGraphQL:
    """A minimal GraphQL client for the webserver (`/graphql`); errors name the server and the operation."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        import httpx  # here, not at import time: `marketdata backfill --help` stays light

        self.url = url.rstrip("/") + "/graphql"
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            response = self.http.post(self.url, json={"query": query, "variables": variables})
        except httpx.HTTPError as exc:
            raise BackfillError(f"cannot reach Dagster at {self.url}: {exc}") from None
        if response.status_code != 200:
            raise BackfillError(f"Dagster at {self.url} answered HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        if body.get("errors"):
            raise BackfillError(f"Dagster GraphQL error: {body['errors'][0].get('message')}")
        return body["data"]


def partition_names(symbols: Sequence[str], start: str, end: str) -> list[str]:
    """Multi-partition keys "YYYY-MM-DD|SYMBOL" for every day and symbol (validated first)."""
    days = days_between(parse_day(start), parse_day(end))
    if days[-1] >= datetime.now(UTC).date():
        raise InvalidInputError(f"end date {days[-1]} is not a complete UTC day yet (the last is yesterday)")
    return [f"{day.isoformat()}|{symbol}" for symbol in symbols for day in days]


def launch_backfill(client: DagsterGraphQL, symbols: Sequence[str], intervals: Sequence[str], start: str,
                    end: str, location: str, title: str | None = None) -> str:
    """Add missing symbol partitions, launch the backfill; returns its id."""
    names = partition_names(symbols, start, end)
    selector = {"repositoryLocationName": location, "repositoryName": "__repository__"}
    for symbol in symbols:
        result = client.execute(ADD_PARTITION, {"selector": selector, "name": SYMBOLS_PARTITIONS_NAME,
                                                "key": symbol})["addDynamicPartition"]
        if result["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
            raise BackfillError(f"adding symbol {symbol} to the '{SYMBOLS_PARTITIONS_NAME}' partitions failed: "
                                f"{result.get('message', result['__typename'])}")
    params = {
        "assetSelection": [{"path": [f"klines_{interval}"]} for interval in intervals],
        "partitionNames": names,
        "title": title or f"klines {','.join(intervals)} {','.join(symbols)} {start}..{end}",
        "tags": [{"key": "marketdata/reason", "value": "cli_backfill"}],
    }
    result = client.execute(LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"the backfill was refused: {result.get('message', result['__typename'])}")
    return result["backfillId"]


def backfill_status(client: DagsterGraphQL, backfill_id: str) -> dict[str, Any]:
    result = client.execute(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
    if result["__typename"] != "PartitionBackfill":
        raise BackfillError(f"backfill {backfill_id}: {result.get('message', result['__typename'])}")
    return result


def wait_for(client: DagsterGraphQL, backfill_id: str, timeout_s: float, poll_s: float = 2.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = backfill_status(client, backfill_id)
        runs = status.get("runs") or []
        if status["status"] in FINAL_STATUSES and not any(
            r["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED") for r in runs
        ):
            return status
        if time.monotonic() > deadline:
            raise BackfillError(f"backfill {backfill_id} still {status['status']} after {timeout_s:.0f} s")
        time.sleep(poll_s)


@click.command("backfill")
@click.option("--symbols", cls=MultiValueOption, required=True, help="Symbols, e.g. BTCUSDT ETHUSDT.")
@click.option("--intervals", cls=MultiValueOption, required=True, help="Intervals, e.g. 1m 1h.")
@click.option("--start", help="First day, YYYY-MM-DD.")
@click.option("--end", help="Last day, YYYY-MM-DD (default: yesterday).")
@click.option("--days", type=int, help="The last N complete days instead of --start/--end.")
@click.option("--dagster-url", envvar="DAGSTER_URL", default=DEFAULT_URL, show_default=True,
              help="The Dagster webserver.")
@click.option("--location", envvar="DAGSTER_LOCATION", default="marketdata", show_default=True,
              help="Code location name (workspace.yaml).")
@click.option("--wait/--no-wait", default=False, help="Wait for the backfill to finish.")
@click.option("--timeout", type=click.FloatRange(min=1, max=7 * 86_400), default=3600.0, show_default=True,
              help="Seconds to --wait at most.")
def backfill_command(symbols: tuple[str, ...], intervals: tuple[str, ...], start: str | None, end: str | None,
                     days: int | None, dagster_url: str, location: str, wait: bool, timeout: float) -> None:
    """Launch a backfill of kline assets on a running Dagster (UI + daemon)."""
    try:
        wanted_symbols = [validate_symbol(s.upper()) for s in symbols]
        wanted_intervals = [validate_interval(i) for i in intervals]
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        if days is not None:
            if days < 1 or start:
                raise InvalidInputError("--days needs a positive number and no --start")
            start, end = (yesterday - timedelta(days=days - 1)).isoformat(), yesterday.isoformat()
        if not start:
            raise InvalidInputError("give --start (and optionally --end) or --days")
        end = end or yesterday.isoformat()
        names = partition_names(wanted_symbols, start, end)
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    client = DagsterGraphQL(dagster_url)
    try:
        backfill_id = launch_backfill(client, wanted_symbols, wanted_intervals, start, end, location)
        click.echo(f"backfill {backfill_id}: {len(names)} partition(s) x {len(wanted_intervals)} asset(s) "
                   f"launched on {dagster_url} (see {dagster_url}/runs/b/{backfill_id})")
        if wait:
            status = wait_for(client, backfill_id, timeout)
            runs = status.get("runs") or []
            failed = [r for r in runs if r["status"] != "SUCCESS"]
            click.echo(f"backfill {backfill_id}: {status['status']}, {len(runs)} run(s), {len(failed)} not successful")
            if failed or status["status"] not in ("COMPLETED", "COMPLETED_SUCCESS"):
                raise SystemExit(1)
    finally:
        client.close()
