"""The per-IP request budget shared by every Binance client of a process (SPEC A.1).

Why: Binance counts request weight per IP per minute (2400) and answers 429 when it is exceeded, then 418
(an IP ban from 2 minutes to 3 days) to clients that keep going. So every thread asks the budget before a
request, and the budget trusts the server's own count (`X-MBX-USED-WEIGHT-1M`), which includes other
processes on the same IP. `/fapi/v1/fundingRate` has a separate limit of 500 requests per 5 minutes.

Time is a logical clock: max(wall clock, the end of the last wait). A wait therefore always makes
progress even when `sleep` is injected (tests record waits instead of sleeping), and never busy-loops.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
DEFAULT_WEIGHT_LIMIT = 2400
FUNDING_LIMIT = 500
FUNDING_WINDOW_S = 300


class LogicalClock:
    """Epoch ms that never goes back and jumps forward past every completed wait."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._floor_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            self._floor_ms = max(self._floor_ms, int(self._clock() * 1000))
            return self._floor_ms

    def advance_to(self, ms: int) -> None:
        with self._lock:
            self._floor_ms = max(self._floor_ms, ms)


class RequestRateLimiter:
    """At most `limit * (1 - headroom)` requests in any sliding window of `window_s` seconds."""

    def __init__(self, limit: int = FUNDING_LIMIT, window_s: float = FUNDING_WINDOW_S,
                 headroom: float = 0.1, *, clock: LogicalClock | None = None, sleep: Sleep = time.sleep) -> None:
        if limit < 1 or window_s <= 0 or not 0 <= headroom < 1:
            raise ValueError(f"invalid request limit {limit}/{window_s}s with headroom {headroom}")
        self.limit = limit
        self.window_ms = int(window_s * 1000)
        self.cap = max(1, int(limit * (1 - headroom)))
        self._clock = clock or LogicalClock()
        self._sleep = sleep
        self._sent: deque[int] = deque()
        self._lock = threading.Lock()

    def acquire(self, sleep: Sleep | None = None) -> float:
        """Block until one more request fits; return the seconds waited."""
        sleep = sleep or self._sleep
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock.now_ms()
                while self._sent and self._sent[0] <= now - self.window_ms:
                    self._sent.popleft()
                if len(self._sent) < self.cap:
                    self._sent.append(now)
                    return waited
                target = self._sent[0] + self.window_ms
            delay = (target - now) / 1000
            sleep(delay)
            waited += delay
            self._clock.advance_to(target)


class WeightBudget:
    """Request weight per fixed UTC minute, synced from the server's header; thread-safe.

    `acquire(weight)` blocks while the minute's used weight plus this request would exceed
    `limit * (1 - headroom)`, and while a 429/418 penalty is running (`penalise`). Call `release(weight)`
    once the answer is in: a request still in flight when a window rolls over may be counted by the
    server in a later window, so a new window starts with the in-flight weight already used.
    """

    def __init__(self, limit: int = DEFAULT_WEIGHT_LIMIT, headroom: float = 0.1, *,
                 window_s: float = 60.0, guard_ms: int = 250, clock: Callable[[], float] = time.time,
                 sleep: Sleep = time.sleep, funding_limit: int = FUNDING_LIMIT,
                 funding_window_s: float = FUNDING_WINDOW_S, inflight_expiry_s: float = 120.0,
                 on_ban: Callable[[int], None] | None = None) -> None:
        if limit < 1 or not 0 <= headroom < 1:
            raise ValueError(f"invalid weight limit {limit} with headroom {headroom}")
        self.limit = limit
        self.headroom = headroom
        self.cap = max(1, int(limit * (1 - headroom)))
        self.window_ms = int(window_s * 1000)
        # After a window rolls over, wait a little longer: the server's minute may start a bit later than ours.
        self.guard_ms = guard_ms
        self.clock = LogicalClock(clock)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._window = -1
        self._used = 0
        # window -> [weight acquired then and not yet answered, monotonic time of the last acquire]
        self._inflight: dict[int, list[float]] = {}
        self.inflight_expiry_s = inflight_expiry_s
        self._penalty_until_ms = 0
        self._banned_until_ms = 0
        # after a ban, one request goes first (a probe) and the others wait for its answer: several
        # workers resuming at once would draw the next, longer ban
        self._probe_pending = False
        self._probe_out = False
        self.on_ban = on_ban  # told the end of every ban (the shared budgets record it for other processes)
        self.waited_s = 0.0
        self.funding = RequestRateLimiter(funding_limit, funding_window_s, headroom, clock=self.clock, sleep=sleep)

    def __repr__(self) -> str:
        return f"WeightBudget(limit={self.limit}, cap={self.cap}, used={self.used})"

    def now_ms(self) -> int:
        return self.clock.now_ms()

    @property
    def used(self) -> int:
        """Weight used in the current window, as far as this process knows."""
        with self._lock:
            self._roll(self.clock.now_ms())
            return self._used

    def _roll(self, now_ms: int) -> None:
        window = now_ms // self.window_ms
        if window > self._window:
            self._window = window
            # Requests still in flight may land in this window. A reservation never released (a caller
            # that forgot) is forgotten after inflight_expiry_s of real time, longer than any timeout.
            oldest = time.monotonic() - self.inflight_expiry_s
            self._inflight = {w: v for w, v in self._inflight.items() if v[0] > 0 and v[1] >= oldest}
            self._used = min(int(sum(v[0] for v in self._inflight.values())), self.cap)

    def acquire(self, weight: int, sleep: Sleep | None = None) -> float:
        """Reserve `weight` in the current window, waiting as long as needed; return the seconds waited."""
        if weight < 0:
            raise ValueError(f"request weight must be >= 0, got {weight}")
        sleep = sleep or self._sleep
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock.now_ms()
                self._roll(now)
                if now < self._penalty_until_ms:
                    target = self._penalty_until_ms
                elif self._probe_pending and self._probe_out:
                    self._released.wait(timeout=0.5)  # the probe's answer decides (real time, bounded)
                    continue
                elif self._used + weight <= self.cap or (self._used == 0 and weight > self.cap):
                    self._used += weight
                    entry = self._inflight.setdefault(self._window, [0, 0.0])
                    entry[0] += weight
                    entry[1] = time.monotonic()
                    self.waited_s += waited
                    if self._probe_pending:
                        self._probe_out = True
                    return waited
                elif self._pending_locked():
                    # Full, with answers still out: they may land in the next window, so let them come
                    # back first (real time, bounded) instead of starting the next window with them.
                    self._released.wait(timeout=0.5)
                    continue
                else:
                    target = (self._window + 1) * self.window_ms + self.guard_ms
            delay = (target - now) / 1000
            sleep(delay)
            waited += delay
            self.clock.advance_to(target)

    def _pending_locked(self) -> bool:
        oldest = time.monotonic() - self.inflight_expiry_s
        return any(v[0] > 0 and v[1] >= oldest for v in self._inflight.values())

    def release(self, weight: int, acquired_at_ms: int | None = None) -> None:
        """The request of `weight` acquired at `acquired_at_ms` got its answer (or failed)."""
        with self._lock:
            self._roll(self.clock.now_ms())  # a window that rolled while it was in flight counts it
            window = self._window if acquired_at_ms is None else acquired_at_ms // self.window_ms
            entry = self._inflight.get(window)
            if entry is not None:
                entry[0] = max(0, entry[0] - weight)
            if self._probe_out:  # the probe is answered; a new ban (penalised before this) sets it again
                self._probe_out = False
                self._probe_pending = self._banned_until_ms > self.clock.now_ms()
            self._released.notify_all()

    def observe(self, used_weight: int | str | None, sent_at_ms: int | None = None) -> None:
        """Adopt the server's `X-MBX-USED-WEIGHT-1M` (it counts every process on this IP).

        `sent_at_ms` is when the request left; a header from an earlier window is ignored.
        """
        if used_weight is None:
            return
        try:
            value = int(used_weight)
        except (TypeError, ValueError):
            return
        with self._lock:
            self._roll(self.clock.now_ms())
            if sent_at_ms is not None and sent_at_ms // self.window_ms != self._window:
                return
            self._used = max(self._used, value)

    def penalise(self, until_ms: int, *, banned: bool = False, record: bool = True) -> None:
        """No thread sends before `until_ms` (after a 429, or a 418 ban when `banned`: then one probe
        goes first when it ends, and `on_ban` is told unless `record` is False)."""
        with self._lock:
            self._penalty_until_ms = max(self._penalty_until_ms, int(until_ms))
            if banned:
                self._banned_until_ms = max(self._banned_until_ms, int(until_ms))
                self._probe_pending = True
        if banned and record and self.on_ban is not None:
            self.on_ban(int(until_ms))

    @property
    def banned_until_ms(self) -> int | None:
        """End of a known IP ban still running, so that clients can refuse to wait days for it."""
        with self._lock:
            until = self._banned_until_ms
        return until if until > self.clock.now_ms() else None

    def next_window_ms(self) -> int:
        """Start of the next weight window (plus the guard): where a 429 without Retry-After waits to."""
        now = self.clock.now_ms()
        return (now // self.window_ms + 1) * self.window_ms + self.guard_ms


class BanFile:
    """The end of the last IP ban per host, in one small JSON file every process of this user reads: a
    ban is per IP, so the next `marketdata download` (or a sidecar, or a Dagster run) waits it out
    instead of drawing a longer one. Best effort: a file that cannot be read or written is logged and
    ignored, never a reason to fail a load."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def default(cls) -> BanFile:
        """MARKETDATA_STATE_DIR (environment or MARKETDATA_CONFIG), else $XDG_CACHE_HOME/marketdata."""
        from marketdata_assets.binance.intervals import InvalidInputError
        from marketdata_assets.config_file import effective_env

        try:
            env = effective_env()
        except InvalidInputError:  # reported by whoever reads the configuration first
            env = dict(os.environ)
        root = env.get("MARKETDATA_STATE_DIR") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "marketdata")
        return cls(Path(root) / "upstream-bans.json")

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.debug("ban file %s unreadable: %s", self.path, exc)
            return {}
        return {str(k): int(v) for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}

    def read(self, host: str) -> int | None:
        return self._load().get(host)

    def record(self, host: str, until_ms: int) -> None:
        from filelock import FileLock, Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock", timeout=5):
                bans = self._load()
                if bans.get(host, 0) >= until_ms:
                    return
                bans[host] = until_ms
                scratch = self.path.with_suffix(".tmp")
                scratch.write_text(json.dumps(bans))
                os.replace(scratch, self.path)
        except (OSError, Timeout) as exc:
            log.warning("could not record the IP ban in %s: %s", self.path, exc)


_SHARED: dict[str, WeightBudget] = {}
_SHARED_LOCK = threading.Lock()


def shared_budget(base_url: str, limit: int = DEFAULT_WEIGHT_LIMIT) -> WeightBudget:
    """The process-wide budget for one server (host:port): limits are per IP and per server. A ban that
    another process recorded (BanFile) and that is still running is respected from the first request."""
    key = urlsplit(base_url).netloc.lower() or base_url
    with _SHARED_LOCK:
        budget = _SHARED.get(key)
        if budget is None:
            bans = BanFile.default()
            budget = _SHARED[key] = WeightBudget(limit, on_ban=partial(bans.record, key))
            until = bans.read(key)
            if until is not None and until > budget.now_ms():
                log.warning("%s: an IP ban recorded in %s runs for %.0f s more: every request waits", key,
                            bans.path, (until - budget.now_ms()) / 1000)
                budget.penalise(until, banned=True, record=False)
        return budget
