"""Row f: WebSocket aggTrade, sustained messages/s and CPU per message, cryptofeed against the sidecar.

Both get the same offer from the simulator (synthetic aggTrades at `--offered` msg/s over the trading
symbols, `bench_stream.py`'s approach) and run as processes of their own: cryptofeed counting in a callback,
`marketdata stream --streams trade` decoding, normalising and committing to a fresh PostgreSQL database.
After a warm-up, a window of `--seconds` is measured: cryptofeed's count (it prints it on SIGUSR1) or the
sidecar's committed rows (its /metrics), and CPU from /proc: the tool's process, plus for the sidecar the
PostgreSQL backends serving its database (pg_stat_activity). The simulator's queue per connection is raised
for the run, so that a consumer slower than the offer is measured at its own pace instead of being dropped
as a slow consumer. Checks, after the window: the offer is stopped without a tail of other trades (see
`_drain`) and each tool is given the time to take in what the simulator had already written to its socket;
then cryptofeed's count must equal the frames the simulator sent it, and the sidecar's stored rows must
equal them too, with no hole in the consecutive aggregate-trade ids and its own counters agreeing.
"""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from bench.common import PG_ADMIN_URL, free_port, scratch_database
from bench.peers import sim
from bench.peers.checks import Check
from bench.peers.envs import Project, peer_python, wrapper
from bench.peers.measure import base_env, proc_cpu_s
from bench.peers.report import Row

CRYPTOFEED = "cryptofeed, counting only"
SIDECAR = "sidecar -> PostgreSQL, committed"
CPU_CRYPTOFEED = "cryptofeed process"
CPU_SIDECAR = "sidecar process + its PostgreSQL backends"


@dataclass
class Point:
    """A counter and the CPU seconds of the processes behind it, read at one moment."""

    at: float
    count: float
    received: float
    cpu: float
    cpu_parts: dict[str, float]
    sim_sent: int
    sim_cpu: float


class Consumer:
    """A running tool with a way to read its counter and its CPU.

    `taken` is the exact count the truth check compares with the frames sent: cryptofeed's own count, the
    rows in the sidecar's database (commits before 2026-12-03 printed /metrics counters with 6 significant
    digits, so above a million they were off by up to 5 units in the 7th digit)."""

    def __init__(self, proc: subprocess.Popen, read: Callable[[], float], cpu: Callable[[], dict[str, float]],
                 received: Callable[[], float] | None = None,
                 counters: Callable[[], dict[str, float]] | None = None,
                 taken: Callable[[], float] | None = None) -> None:
        self.proc, self.read, self.cpu = proc, read, cpu
        self.received = received or read
        self.counters = counters or dict  # the tool's own counters of reconnects, duplicates, gaps ...
        self.taken = taken or read
        self.seen: dict[int, int] = {}  # frames the simulator wrote per connection, kept once it is closed

    def sent(self, url: str) -> int:
        """Frames the simulator has written to this consumer's connections, closed ones included."""
        for conn, sent in sim.ws_sent_by_connection(url).items():
            self.seen[conn] = max(sent, self.seen.get(conn, 0))
        return sum(self.seen.values())


def symbols(url: str, n: int) -> list[str]:
    info = httpx.get(f"{url}/fapi/v1/exchangeInfo", timeout=30).json()["symbols"]
    return [s["symbol"] for s in info if s["status"] == "TRADING" and s["contractType"] == "PERPETUAL"][:n]


def backend_cpu(database: str) -> dict[str, float]:
    """CPU seconds of every PostgreSQL backend connected to `database` (the sidecar's connections)."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]
    return {f"pg{pid}": proc_cpu_s(pid) for pid in pids}


@contextmanager
def cryptofeed(url: str, names: list[str], work: Path) -> Iterator[Consumer]:
    command = [peer_python("cryptofeed"), wrapper("cryptofeed_count.py"), "--sim", url, "--symbols", *names]
    proc = subprocess.Popen(command, env=base_env() | {"XDG_CACHE_HOME": str(work / "cache")}, cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def answer() -> float:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"cryptofeed gave no count (exit code {proc.poll()})")
        return float(json.loads(line)["count"])

    def read() -> float:
        proc.send_signal(signal.SIGUSR1)
        return answer()

    try:
        answer()  # its handler is in place
        yield Consumer(proc, read, lambda: {"cryptofeed": proc_cpu_s(proc.pid)})
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _metric(text: str, name: str, label: str) -> float:
    found = re.search(rf'^{name}\{{[a-z_]+="{label}"\}} ([0-9.e+]+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@contextmanager
def sidecar(url: str, names: list[str], work: Path, project: Project, database_url: str) -> Iterator[Consumer]:
    port = free_port()
    command = project.cli("stream", "--symbols", *names, "--streams", "trade", "--health-port", str(port),
                          "--spool-dir", str(work / "spool"), "--log-level", "warning", "--database-url",
                          database_url, "--fapi-url", url, "--ws-url", url.replace("http://", "ws://", 1))
    env = base_env() | project.env() | {"MARKETDATA_STATE_DIR": str(work / "state")}
    proc = subprocess.Popen(command, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    database = database_url.rsplit("/", 1)[1]

    def metric(name: str, label: str) -> float:
        return _metric(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text, name, label)

    def read() -> float:
        return metric("marketdata_stream_rows_written_total", "agg_trades")

    def received() -> float:
        return metric("marketdata_stream_messages_total", "trade")

    def counters() -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        found = {name: sum(float(v) for v in re.findall(rf"^marketdata_stream_{name}(?:{{[^}}]*}})? ([0-9.e+]+)$",
                                                         text, re.M))
                 for name in ("reconnects_total", "duplicate_messages_total", "malformed_frames_total",
                              "rows_rejected_total", "gaps_opened_total", "trade_ids_filled_total")}
        return {"received": _metric(text, "marketdata_stream_messages_total", "trade"),
                "committed": _metric(text, "marketdata_stream_rows_written_total", "agg_trades")} | \
            {name.removesuffix("_total"): value for name, value in found.items()}

    def stored() -> float:
        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            return float(conn.execute("SELECT count(*) FROM agg_trades").fetchone()[0])

    try:
        yield Consumer(proc, read, lambda: {"sidecar": proc_cpu_s(proc.pid)} | backend_cpu(database), received,
                       counters, stored)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _point(consumer: Consumer, url: str, sim_pid: int | None) -> Point:
    at = time.monotonic()
    count = consumer.read()
    parts = consumer.cpu()
    received = count if consumer.received is consumer.read else consumer.received()
    sim_cpu = proc_cpu_s(sim_pid) if sim_pid else 0.0
    return Point(at, count, received, sum(parts.values()), parts, consumer.sent(url), sim_cpu)


def _window(consumer: Consumer, url: str, sim_pid: int | None, warmup: float, seconds: float) -> tuple[Point, Point]:
    deadline = time.monotonic() + 60
    while True:  # started: the counter moves
        if consumer.proc.poll() is not None:
            raise RuntimeError(f"consumer exited {consumer.proc.returncode} before the window")
        try:
            if consumer.read() > 0:
                break
        except (httpx.HTTPError, RuntimeError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("consumer received nothing within 60 s")
        time.sleep(0.2)
    time.sleep(warmup)
    start = _point(consumer, url, sim_pid)
    time.sleep(seconds)
    return start, _point(consumer, url, sim_pid)


@dataclass
class Drained:
    """Where a consumer stood once the offer had stopped and it had taken in what it was going to."""

    taken: float  # the exact count (cryptofeed's, or rows in the sidecar's database)
    sent: int  # frames the simulator wrote to the consumer's connections
    seconds: float  # from the offer's stop until then
    counters: dict[str, float] = field(default_factory=dict)  # the tool's own, then

    @property
    def caught_up(self) -> bool:
        return self.taken == self.sent

    def __str__(self) -> str:
        took = f"{self.seconds:.0f} s after the offer stopped"
        return f"all {self.sent:,} frames taken in {took}" if self.caught_up else \
            f"{self.sent - self.taken:,.0f} of the {self.sent:,} frames sent never taken in (no progress {took})"


def _drain(consumer: Consumer, url: str, anchor_ms: int, patience: float = 10.0, cap: float = 600.0) -> Drained:
    """Stop the offer, then wait until the consumer has taken in every frame sent to it, or makes no more
    progress.

    Why the clock is set back first: a channel at rate 0 goes back to the market's own trades from the
    market time it last produced, which a synthetic run never moves; frozen at the round's anchor (before
    every channel's start), it produces nothing, so the stream ends with the last synthetic id. The
    simulator has by then written up to its whole queue to the socket at once (`sent`), far ahead of the
    consumer, which is given the time to read it at its own pace (`patience` seconds without progress end
    the wait: what has not arrived by then is lost)."""
    sim.ws(url, "clock", speed=None)
    sim.set_clock(url, anchor_ms)
    sim.ws(url, "rate", stream="*", rate=0)
    stopped = moved = time.monotonic()
    last = -1.0
    while True:
        time.sleep(0.5)
        taken, sent = consumer.taken(), consumer.sent(url)
        now = time.monotonic()
        if taken == sent:
            time.sleep(0.5)  # nothing still queued behind a full socket: both stay where they are
            if (consumer.taken(), consumer.sent(url)) == (taken, sent):
                return Drained(taken, sent, now - stopped, consumer.counters())
            continue
        if taken != last:
            last, moved = taken, now
        if now - moved > patience or now - stopped > cap:
            return Drained(taken, sent, now - stopped, consumer.counters())


def _printed(value: float, exact: float) -> bool:
    """Whether a counter as /metrics prints it is `exact`: in full since 2026-12-03, with 6 significant
    digits (`{v:g}`) before (a commit measured with --project-commit may be older)."""
    return value == exact or float(f"{exact:g}") == value


def _sidecar_check(database_url: str, drained: Drained, window_end: Point, in_window: dict[str, float]) -> Check:
    """Stored rows against the frames the simulator sent: consecutive synthetic ids per symbol without holes,
    one synthetic (price, qty) per symbol, its counters agreeing with what it stored, and the window
    measured on one unbroken connection.

    If its connection held through the drain: one stored row per frame sent. If the sidecar closed it
    during the drain (its keepalive gives a pong 20 s; the simulator's pong is queued behind the whole
    backlog it wrote at once, which takes the sidecar far longer to read), what was still in that socket
    is gone: then every message it counted as received must be stored (none lost in the writer), at least
    what its counter had at the window's end, and the loss must be recorded as stream gaps."""
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute("SELECT symbol, count(*), max(agg_id) - min(agg_id) + 1, count(DISTINCT (price, quantity)) "
                            "FROM agg_trades GROUP BY symbol").fetchall()
        gaps = conn.execute("SELECT count(*) FROM stream_gaps WHERE data_type = 'trade'").fetchone()[0]
    stored = sum(r[1] for r in rows)
    holes = sum(r[2] - r[1] for r in rows)
    values = max((r[3] for r in rows), default=0)
    counters = drained.counters
    received, committed = counters.get("received", -1.0), counters.get("committed", -1.0)
    unique = stored + counters.get("duplicate_messages", 0)
    shape = holes == 0 and values <= 1 and in_window.get("reconnects", 0) == 0 and \
        _printed(committed, stored) and _printed(received, unique)
    common = (f"{len(rows)} symbols, {holes:,} ids missing inside the stored ranges, {values} distinct (price, qty) "
              f"per symbol (synthetic: 1); its counters: "
              + ", ".join(f"{k} {v:,.0f}" for k, v in counters.items())
              + f"; {in_window.get('reconnects', 0):.0f} reconnects in the window")
    if not counters.get("reconnects", 0):
        ok = shape and stored == drained.sent
        return Check(ok, stored, f"{drained}; {stored:,} rows stored for {drained.sent:,} frames sent; {common}")
    ok = shape and window_end.count <= stored <= drained.sent and gaps >= len(rows)
    return Check(ok, stored, f"the sidecar closed its connection during the drain: {drained.sent - stored:,.0f} of "
                             f"the {drained.sent:,} frames the simulator wrote to it not stored, recorded as {gaps} "
                             f"stream gap(s); {stored:,} rows stored ({window_end.count:,.0f} committed at the "
                             f"window's end); {common}")


def run_stream(url: str, project: Project, rounds: int, offered: float, n_symbols: int, warmup: float,
               seconds: float) -> list[Row]:
    names = symbols(url, n_symbols)
    sim_pid = sim.pid_listening_on(int(url.rsplit(":", 1)[1]))
    rate = Row("stream", f"WebSocket aggTrade, sustained msg/s ({offered:,.0f}/s offered over {len(names)} symbols)",
               "msg/s", [CRYPTOFEED], [SIDECAR], higher_is_better=True)
    cpu = Row("cpu", "CPU per message", "us/msg", [CPU_CRYPTOFEED], [CPU_SIDECAR])
    # no pings during a case: a ping is a frame the simulator counts as sent that no consumer counts
    sim.ws(url, "config", tick_s=0.02, max_pending_frames=20_000_000, ping_interval_s=3600)
    for i in range(rounds):
        for case in (CRYPTOFEED, SIDECAR):
            anchor = int(time.time() * 1000)
            sim.ws(url, "rate", stream="*", rate=offered / len(names))
            sim.ws(url, "clock", speed=1, anchor=anchor)
            with tempfile.TemporaryDirectory(prefix="peers-stream-") as folder:
                work = Path(folder)
                if case == CRYPTOFEED:
                    with cryptofeed(url, names, work) as consumer:
                        start, end = _window(consumer, url, sim_pid, warmup, seconds)
                        drained = _drain(consumer, url, anchor)
                    check = Check(drained.caught_up, int(drained.taken),
                                  f"counted {drained.taken:,.0f} of the {drained.sent:,} frames the simulator sent "
                                  f"it: {drained}")
                else:
                    with scratch_database(f"md_peers_stream_{i}") as database_url:
                        with sidecar(url, names, work, project, database_url) as consumer:
                            start, end = _window(consumer, url, sim_pid, warmup, seconds)
                            in_window = consumer.counters()
                            drained = _drain(consumer, url, anchor)
                        check = _sidecar_check(database_url, drained, end, in_window)
            _record(rate, cpu, case, start, end, check)
            time.sleep(1.0)
    sim.ws(url, "config", tick_s=0.05, max_pending_frames=200_000, ping_interval_s=180)
    rate.notes.append("the sidecar's figure is rows committed to PostgreSQL; cryptofeed's is Trade objects handed "
                      "to a callback that counts (nothing stored)")
    cpu.notes.append("sidecar CPU counts its PostgreSQL backends, not PostgreSQL's WAL writer or checkpointer")
    return [rate, cpu]


def _record(rate: Row, cpu: Row, case: str, start: Point, end: Point, check: Check) -> None:
    elapsed = end.at - start.at
    count = end.count - start.count
    parts = {k: round(v - start.cpu_parts.get(k, 0.0), 2) for k, v in end.cpu_parts.items()}
    offered_rate = (end.sim_sent - start.sim_sent) / elapsed
    extra = {"window_s": round(elapsed, 2), "received_per_s": round((end.received - start.received) / elapsed),
             "sim_sent_per_s": round(offered_rate),
             "sim_cpu_share": round((end.sim_cpu - start.sim_cpu) / elapsed, 2),
             "cpu_share": round((end.cpu - start.cpu) / elapsed, 2), "cpu_s_by_process": parts}
    rate.add(case, count / elapsed, extra, check)
    cpu_case = CPU_CRYPTOFEED if case == CRYPTOFEED else CPU_SIDECAR
    cpu.add(cpu_case, (end.cpu - start.cpu) / max(count, 1) * 1e6, {"messages": int(count)})
