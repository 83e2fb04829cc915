"""Retry policy shared by the REST and archive clients: exponential backoff with full jitter.

Why full jitter: many workers retrying the same outage spread out instead of arriving together.
Only transient failures are retried (timeouts, connection resets, 408, 5xx); a 4xx is an answer.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from marketdata_assets.binance.breaker import CircuitBreaker
from marketdata_assets.binance.errors import BinanceServerError, BinanceUnavailableError, error_from_response

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]

# Timeouts, refused/reset connections, and servers that hang up without an answer.
TRANSIENT_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError,
)


def is_transient_status(status: int) -> bool:
    return status == 408 or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` retries after the first attempt; delay(n) is uniform in [0, min(cap, base * 2**n)]."""

    max_retries: int = 5
    base_s: float = 0.2
    cap_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * (2 ** attempt)))


def describe_failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def get_with_retries(http: httpx.Client, url: str, *, policy: RetryPolicy, sleep: Sleep = time.sleep,
                     params: Mapping[str, Any] | None = None, breaker: CircuitBreaker | None = None
                     ) -> httpx.Response:
    """GET, retrying transient failures; the final response for any non-transient status (404 included).

    Raises BinanceUnavailableError when timeouts/resets persist (or `breaker` is open: UpstreamDownError),
    BinanceServerError when 5xx persists. Every retry is logged.
    """
    for attempt in range(policy.max_retries + 1):
        last = attempt == policy.max_retries
        if breaker is not None:
            breaker.before(url)
            started = breaker.now()
        try:
            response = http.get(url, params=params)
        except TRANSIENT_EXCEPTIONS as exc:
            if breaker is not None:
                breaker.failure(describe_failure(exc), started)
            if last:
                raise BinanceUnavailableError(
                    f"no answer after {attempt + 1} attempts ({describe_failure(exc)})", url
                ) from exc
            delay = policy.delay(attempt)
            log.warning("%s: %s; retry %d in %.2f s", url, describe_failure(exc), attempt + 1, delay)
            sleep(delay)
            continue
        if not is_transient_status(response.status_code):
            if breaker is not None:
                breaker.success()
            return response
        if breaker is not None:
            breaker.failure(f"HTTP {response.status_code}", started)
        if last:
            error = error_from_response(response.status_code, response.content, response.headers, url)
            raise BinanceServerError(error.status, error.code, f"{error.msg} (after {attempt + 1} attempts)", url)
        delay = policy.delay(attempt)
        log.warning("%s: HTTP %d; retry %d in %.2f s", url, response.status_code, attempt + 1, delay)
        sleep(delay)
    raise AssertionError("unreachable")
