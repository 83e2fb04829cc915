"""A minimal Prometheus registry (counters, gauges, one histogram kind) and its text format.

Why not prometheus_client: the sidecar needs a dozen series, rendered by its own aiohttp server; a
small registry keeps the hot path to a dict lookup and an add, with no extra dependency.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable

LabelKey = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: LabelKey, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Iterable[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


def _number(value: float) -> str:
    """A sample value in full (`:g` keeps six digits: 2,520,012 rows would read 2.52001e+06)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Iterable[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self.values: dict[LabelKey, float] = {}

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> list[str]:
        lines = self.header()
        items = self.values.items() or ([((), 0.0)] if not self.labelnames else [])
        lines += [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]
        return lines


class Gauge(Counter):
    """A value set directly, or read from a callback at scrape time (queue depth, spool size)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labelnames: Iterable[str] = (),
                 callback: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text, labelnames)
        self.callback = callback

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def render(self) -> list[str]:
        if self.callback is not None:
            self.values[()] = float(self.callback())
        return super().render()


# Exchange-event -> commit latency, seconds: fine buckets around the 20 ms target.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram(_Metric):
    """Cumulative buckets; thread-safe because the writer thread observes while the loop renders."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def observe_many(self, values: Iterable[float]) -> None:
        with self._lock:
            for value in values:
                self.counts[bisect.bisect_left(self.buckets, value)] += 1
                self.total += value
                self.count += 1

    def observe(self, value: float) -> None:
        self.observe_many((value,))

    def quantile(self, q: float) -> float:
        """The upper bound of the bucket holding quantile q (what a dashboard would show)."""
        with self._lock:
            target = q * self.count
            running = 0
            for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
                running += count
                if running >= target and count:
                    return bound
        return 0.0

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            running = 0
            for bound, count in zip(self.buckets, self.counts, strict=False):
                running += count
                lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {running}')
            lines.append(f'{self.name}_bucket{{le="+Inf"}} {self.count}')
            lines.append(f"{self.name}_sum {_number(self.total)}")
            lines.append(f"{self.name}_count {self.count}")
        return lines


class Metrics:
    """Every series the sidecar exposes on /metrics."""

    def __init__(self) -> None:
        p = "marketdata_stream_"
        self.messages = Counter(p + "messages_total", "Stream messages received, by data type", ["data_type"])
        self.malformed = Counter(p + "malformed_frames_total", "Frames skipped as malformed or unexpected")
        self.duplicates = Counter(p + "duplicate_messages_total", "Messages dropped as already seen")
        self.latency = Histogram(p + "event_to_commit_seconds", "Exchange event time to database commit")
        self.reconnects = Counter(p + "reconnects_total", "Connection re-opens after a drop or stall",
                                  ["reason"])
        self.rotations = Counter(p + "rotations_total", "Connections rotated before the lifetime cap")
        self.resyncs = Counter(p + "book_resyncs_total", "Order book resynchronisations", ["symbol"])
        self.queue_depth = Gauge(p + "queue_depth", "Rows waiting for the writer")
        self.spool_bytes = Gauge(p + "spool_bytes", "Bytes of batches spooled to disk while the DB is down")
        self.rows_written = Counter(p + "rows_written_total", "Rows committed to the database", ["table"])
        self.rows_rejected = Counter(p + "rows_rejected_total", "Rows the database refused (isolated)",
                                     ["table"])
        self.batches_spooled = Counter(p + "batches_spooled_total", "Batches written to the disk spool")
        self.db_up = Gauge(p + "db_up", "1 while the database takes writes, 0 while batches go to the spool")
        self.db_stuck = Gauge(p + "db_stuck", "1 while a database call has hung past the stuck limit")
        self.spool_full = Gauge(p + "spool_full", "1 while the spool refuses batches (disk full or its cap)")
        self.rows_held = Gauge(p + "rows_held", "Rows held in memory because neither database nor spool "
                                                "takes them (bounded: producers wait)")
        self.gaps_opened = Counter(p + "gaps_opened_total", "Stream outage windows recorded")
        self.gaps_filled = Counter(p + "gaps_filled_total", "Outage windows filled from REST")
        self.gaps_failed = Counter(p + "gaps_failed_total", "Outage windows REST could not fill")
        self.gaps_open = Gauge(p + "gaps_open", "Outage windows not yet filled")
        self.trade_ids_filled = Counter(p + "trade_ids_filled_total", "Aggregate trades fetched from REST")

    def all(self) -> list[_Metric]:
        return [v for v in vars(self).values() if isinstance(v, _Metric)]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.all():
            lines += metric.render()
        return "\n".join(lines) + "\n"
