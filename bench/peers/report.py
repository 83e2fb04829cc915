"""Results of the rows: every run's raw figure and check, medians, the project's ratio to each peer, and load.

Why ratios: the machine is shared and its load moves the absolute times by tens of percent; interleaved runs
see the same moments, so peer/project medians are the comparable figure (absolute times only as context).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.peers.checks import Check
from bench.peers.measure import load_average, median


@dataclass
class Sample:
    value: float
    load: float
    extra: dict = field(default_factory=dict)
    check: Check | None = None


@dataclass
class Row:
    """One line of issue 12's table: each case (peer or project variant) with one sample per round."""

    key: str
    title: str
    unit: str  # "s", "msg/s" or "us/msg"
    peers: list[str]
    project: list[str]
    higher_is_better: bool = False
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    load_start: float = field(default_factory=load_average)
    load_end: float = 0.0

    def add(self, case: str, value: float, extra: dict | None = None, check: Check | None = None) -> Sample:
        sample = Sample(value, load_average(), extra or {}, check)
        self.samples.setdefault(case, []).append(sample)
        return sample

    def median(self, case: str) -> float:
        return median([s.value for s in self.samples.get(case, [])])

    def ahead(self, peer: str, project: str) -> float:
        """How many times the project is ahead of the peer (> 1 ahead, < 1 behind), from the medians."""
        p, q = self.median(peer), self.median(project)
        return q / p if self.higher_is_better else p / q

    def all_correct(self, case: str) -> bool:
        return all(s.check is None or s.check.ok for s in self.samples.get(case, []))


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "us/msg":
        return f"{value:.1f} us"
    return f"{value:,.0f} {unit}"


def print_row(row: Row) -> None:
    print(f"\n== {row.key}: {row.title}  (load {row.load_start:.2f} -> {row.load_end:.2f})", flush=True)
    for case, samples in row.samples.items():
        runs = ", ".join(fmt(s.value, row.unit).split()[0] for s in samples)
        loads = ", ".join(f"{s.load:.1f}" for s in samples)
        print(f"  {case:<44} median {fmt(row.median(case), row.unit):>14}   runs {runs}   (load {loads})")
        extras = {k: [s.extra.get(k) for s in samples] for k in samples[0].extra} if samples else {}
        numbers = {k: v for k, v in extras.items() if not all(isinstance(x, str) for x in v)}
        if numbers:
            print("      " + "; ".join(f"{name} {values}" for name, values in numbers.items()))
        for name, values in extras.items():
            if name not in numbers:
                for text in dict.fromkeys(values):  # each distinct text once, in order
                    print(f"      {name}: {text}")
        checks = {str(s.check) for s in samples if s.check is not None}
        for text in sorted(checks):
            print(f"      check: {text}")
    for peer in row.peers:
        for project in row.project:
            if peer in row.samples and project in row.samples:
                print(f"  {project} vs {peer}: {row.ahead(peer, project):.2f}x "
                      f"({'ahead' if row.ahead(peer, project) >= 1 else 'behind'})")
    for note in row.notes:
        print(f"  note: {note}")


def markdown_table(rows: list[Row]) -> str:
    """The README's table: peer, project, ratio, load; every run's raw numbers beside the median."""
    lines = ["| work | peer (median; runs) | this project (median; runs) | ratio (> 1: project ahead) | load |",
             "|---|---|---|---|---|"]
    for row in rows:
        def cell(case: str, row: Row = row) -> str:
            values = [s.value for s in row.samples.get(case, [])]
            runs = ", ".join(fmt(v, row.unit).split()[0] for v in values)
            wrong = "" if row.all_correct(case) else " **WRONG DATA**"
            return f"{case}: **{fmt(row.median(case), row.unit)}** ({runs}){wrong}"

        peers = "<br>".join(cell(p) for p in row.peers if p in row.samples)
        project = "<br>".join(cell(p) for p in row.project if p in row.samples)
        ratios = "<br>".join(f"{q} / {p}: {row.ahead(p, q):.2f}x" for p in row.peers for q in row.project
                             if p in row.samples and q in row.samples)
        others = [c for c in row.samples if c not in row.peers and c not in row.project]
        work = "<br>".join([row.title, *(cell(c) for c in others)])
        lines.append(f"| {work} | {peers} | {project} | {ratios} | {row.load_start:.1f}-{row.load_end:.1f} |")
    return "\n".join(lines)


def save(rows: list[Row], path: Path, meta: dict) -> None:
    data = {"when": datetime.now(UTC).isoformat(timespec="seconds"), **meta, "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(data, indent=1, default=str))
