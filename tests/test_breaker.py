"""The circuit breaker of an upstream host: a burst is the retries' job, a streak that lasts opens it,
requests then fail at once, one probe after the cooldown decides, a failed probe doubles the cooldown."""

from __future__ import annotations

import pytest

from marketdata_assets.binance.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, UpstreamDownError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker("archive.test", threshold=3, min_span_s=10, cooldown_s=30, clock=clock), clock


def test_a_short_burst_does_not_open_it():
    breaker, clock = make()
    for _ in range(5):
        breaker.before("u")
        breaker.failure("HTTP 503")
        clock.now += 0.5
    breaker.success()
    assert breaker.state == CLOSED and breaker.failures == 0


def test_a_lasting_streak_opens_it_and_requests_fail_at_once_naming_the_host():
    breaker, clock = make()
    for _ in range(3):
        breaker.before("u")
        clock.now += 30  # each attempt waits for its read timeout
        breaker.failure("ReadTimeout")
    assert breaker.state == OPEN
    clock.now += 5
    with pytest.raises(UpstreamDownError, match=r"archive.test is not answering \(3 failures in a row, last: "
                                                r"ReadTimeout\); request not sent, next probe in 25 s"):
        breaker.before("https://archive.test/x.zip")


def test_one_probe_after_the_cooldown_closes_it_or_doubles_the_cooldown():
    breaker, clock = make()
    for _ in range(3):
        breaker.failure("ConnectError")
        clock.now += 10
    clock.now += 30
    breaker.before("probe")             # the one probe goes out
    assert breaker.state == HALF_OPEN
    with pytest.raises(UpstreamDownError):
        breaker.before("another")      # everyone else still waits for it
    breaker.failure("ConnectError")
    assert breaker.state == OPEN and breaker.cooldown_s == 60
    clock.now += 59
    with pytest.raises(UpstreamDownError):
        breaker.before("too early")
    clock.now += 1
    breaker.before("second probe")
    breaker.success()
    assert breaker.state == CLOSED and breaker.cooldown_s == 30
    breaker.before("normal again")


def test_parallel_requests_that_time_out_together_count_their_wait():
    breaker, clock = make()
    started = [breaker.now() for _ in range(4)]  # four workers send at once
    clock.now += 30                                # and all time out 30 s later
    for start in started[:3]:
        breaker.failure("ReadTimeout", start)
    assert breaker.state == OPEN
