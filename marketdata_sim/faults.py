"""Fault switches of the simulator (settable at start and at run time through POST /_sim/faults).

- error_burst: the next `count` matching requests get `status` (503 "Service Unavailable." or 500)
- delay: answer matching requests `ms` late (timeouts), for `count` requests or until cleared
- hang: accept matching requests and never answer (until cleared or the server stops)
- corrupt: archive keys whose zip bytes are damaged while the .CHECKSUM keeps the good hash (mismatch)
- truncated: archive keys whose zip is cut short and whose .CHECKSUM matches the cut bytes (bad zip)
- missing: archive keys that answer 404 (a daily file that never appeared, SPEC D.1)
- shuffled: archive keys whose CSV rows come out of order, every tenth row twice (SPEC D.1: aggTrades
  2023-05, metrics); the .CHECKSUM matches, as it did for the real files
- relayout: archive keys whose CSV has an extra column (a changed layout); the .CHECKSUM matches
- bomb: archive keys whose small zip inflates to 1 GiB (the day's CSV, then zeros); the .CHECKSUM matches
- republished: archive keys rewritten at the market's current time (SPEC C.2: archived files may be updated
  later): the same rows zipped anew, so a new .CHECKSUM, and that time as LastModified (headers, listing)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


def archive_key(path: str) -> str:
    """'/data/futures/...zip' or 'data/futures/...zip(.CHECKSUM)' -> 'data/futures/...zip'."""
    key = path.lstrip("/")
    return key.removesuffix(".CHECKSUM")


@dataclass
class Faults:
    error_count: int = 0
    error_status: int = 503
    error_prefix: str = "/"
    delay_ms: int = 0
    delay_count: int | None = None  # None: every matching request
    delay_prefix: str = "/"
    hang_count: int | None = 0  # 0: off, None: every matching request
    hang_prefix: str = "/"
    corrupt: set[str] = field(default_factory=set)
    truncated: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    shuffled: set[str] = field(default_factory=set)
    relayout: set[str] = field(default_factory=set)
    bomb: set[str] = field(default_factory=set)
    republished: dict[str, int] = field(default_factory=dict)  # key -> LastModified (market ms)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def update(self, spec: dict, now_ms: int | None = None) -> None:
        """Merge a JSON fault description (see module doc) into the current switches; `now_ms` is the
        market's clock (when a republished file was rewritten)."""
        with self._lock:
            if spec.get("clear"):
                self.__init__()  # type: ignore[misc]
            if "error_burst" in spec:
                burst = spec["error_burst"] or {}
                self.error_count = int(burst.get("count", 1))
                self.error_status = int(burst.get("status", 503))
                self.error_prefix = str(burst.get("prefix", "/"))
            if "delay" in spec:
                delay = spec["delay"] or {}
                self.delay_ms = int(delay.get("ms", 0))
                self.delay_count = delay.get("count")
                self.delay_prefix = str(delay.get("prefix", "/"))
            if "hang" in spec:
                hang = spec["hang"]
                if hang in (None, False):
                    self.hang_count = 0
                else:
                    hang = {} if hang is True else hang
                    self.hang_count = hang.get("count")
                    self.hang_prefix = str(hang.get("prefix", "/"))
            for name in ("corrupt", "truncated", "missing", "shuffled", "relayout", "bomb"):
                if name in spec:
                    getattr(self, name).update(archive_key(p) for p in spec[name] or [])
            if "republished" in spec:
                if now_ms is None:
                    raise ValueError("republished needs the market's clock")
                self.republished.update({archive_key(p): int(now_ms) for p in spec["republished"] or []})

    def take_error(self, path: str) -> int | None:
        with self._lock:
            if self.error_count > 0 and path.startswith(self.error_prefix):
                self.error_count -= 1
                return self.error_status
        return None

    def take_delay(self, path: str) -> int:
        with self._lock:
            if self.delay_ms <= 0 or not path.startswith(self.delay_prefix):
                return 0
            if self.delay_count is not None:
                if self.delay_count <= 0:
                    return 0
                self.delay_count -= 1
            return self.delay_ms

    def take_hang(self, path: str) -> bool:
        with self._lock:
            if self.hang_count == 0 or not path.startswith(self.hang_prefix):
                return False
            if self.hang_count is not None:
                self.hang_count -= 1
            return True

    def describe(self) -> dict:
        return {
            "error_burst": {"count": self.error_count, "status": self.error_status, "prefix": self.error_prefix},
            "delay": {"ms": self.delay_ms, "count": self.delay_count, "prefix": self.delay_prefix},
            "hang": {"count": self.hang_count, "prefix": self.hang_prefix},
            "corrupt": sorted(self.corrupt), "truncated": sorted(self.truncated), "missing": sorted(self.missing),
            "shuffled": sorted(self.shuffled), "relayout": sorted(self.relayout), "bomb": sorted(self.bomb),
            "republished": dict(sorted(self.republished.items())),
        }
