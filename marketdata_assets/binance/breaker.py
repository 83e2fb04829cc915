"""A circuit breaker per upstream host (the REST API, the archive), shared by every thread of a process.

Why: retries alone make a dead or hung host expensive: a file whose host accepts and never answers costs
every attempt's full timeout, for every file, in every worker. After `threshold` failures in a row
(timeouts, refused connections, 5xx) whose requests span at least `min_span_s` (a short burst is the retries' job,
not an outage) the breaker opens: requests to that host fail at once with
`UpstreamDownError` (a `BinanceUnavailableError`, so the kline loader falls back from the archive to
REST), and it says so in one log line. After `cooldown_s` one request goes through as a probe (half
open): an answer closes the breaker, a failure opens it again for twice as long (up to `max_cooldown_s`).
Any HTTP answer that is not a 5xx (a 404 included) counts as the host being up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from marketdata_assets.binance.errors import BinanceUnavailableError

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class UpstreamDownError(BinanceUnavailableError):
    """The breaker of this host is open: the request was not sent."""


class CircuitBreaker:
    def __init__(self, host: str, *, threshold: int = 3, min_span_s: float = 10.0, cooldown_s: float = 30.0,
                 max_cooldown_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.threshold = threshold
        self.min_span_s = min_span_s
        self._first_failure = 0.0
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self.state = CLOSED
        self.failures = 0           # in a row
        self.cooldown_s = cooldown_s
        self._opened_at = 0.0
        self._probing = False
        self._probe_started = 0.0
        self.probe_timeout_s = 300.0  # a probe whose outcome never came back (an unexpected error) expires
        self.last_error = ""
        self.opened_count = 0

    def before(self, url: str) -> None:
        """Raise UpstreamDownError unless a request may go out now (closed, or this one is the probe)."""
        with self._lock:
            if self.state == CLOSED:
                return
            remaining = self._opened_at + self.cooldown_s - self._clock()
            if self.state == OPEN and remaining <= 0:
                self.state = HALF_OPEN
            now = self._clock()
            if self._probing and now - self._probe_started > self.probe_timeout_s:
                self._probing = False
            if self.state == HALF_OPEN and not self._probing:
                self._probing = True
                self._probe_started = now
                log.info("%s: probing after %.0f s of silence", self.host, self.cooldown_s)
                return
            wait = max(0.0, remaining)
        raise UpstreamDownError(
            f"{self.host} is not answering ({self.failures} failures in a row, last: {self.last_error}); "
            f"request not sent, next probe in {wait:.0f} s", url)

    def success(self) -> None:
        with self._lock:
            if self.state != CLOSED:
                log.warning("%s answers again: requests resume", self.host)
            self.state = CLOSED
            self.failures = 0
            self.cooldown_s = self.base_cooldown_s
            self._probing = False

    def now(self) -> float:
        return self._clock()

    def failure(self, error: str, started: float | None = None) -> None:
        """A request that began at `started` (this breaker's clock: `now()`) failed: the streak's span
        runs from the earliest start, so parallel requests that time out together count their wait."""
        with self._lock:
            now = self._clock()
            began = now if started is None else started
            self._first_failure = began if self.failures == 0 else min(self._first_failure, began)
            self.failures += 1
            self.last_error = error
            if self.state == HALF_OPEN:
                self.cooldown_s = min(self.max_cooldown_s, self.cooldown_s * 2)
                self._open()
            elif (self.state == CLOSED and self.failures >= self.threshold
                  and now - self._first_failure >= self.min_span_s):
                self._open()

    def _open(self) -> None:
        self.state = OPEN
        self._opened_at = self._clock()
        self._probing = False
        self.opened_count += 1
        log.warning("%s: %d failures in a row (%s): no requests to it for %.0f s, then one probe",
                    self.host, self.failures, self.last_error, self.cooldown_s)


_SHARED: dict[str, CircuitBreaker] = {}
_SHARED_LOCK = threading.Lock()


def shared_breaker(base_url: str) -> CircuitBreaker:
    """The process-wide breaker of one host (host:port)."""
    key = urlsplit(base_url).netloc.lower() or base_url
    with _SHARED_LOCK:
        breaker = _SHARED.get(key)
        if breaker is None:
            breaker = _SHARED[key] = CircuitBreaker(key)
        return breaker
