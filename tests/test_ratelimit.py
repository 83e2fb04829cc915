"""WeightBudget and RequestRateLimiter: waits, server sync, penalties, thread safety (no server needed).

A fake clock is advanced by the injected sleep, so every wait is recorded instead of slept.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest

from marketdata_assets.binance.ratelimit import LogicalClock, RequestRateLimiter, WeightBudget, shared_budget


class FakeTime:
    """A clock that only moves when someone sleeps; records every sleep."""

    def __init__(self, start_s: float) -> None:
        self.now = start_s
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)


START = 1_700_000_020.0  # 40 s into a UTC minute


def make_budget(limit: int = 100, headroom: float = 0.1, **kwargs) -> tuple[WeightBudget, FakeTime]:
    fake = FakeTime(START)
    return WeightBudget(limit, headroom, clock=fake.time, sleep=fake.sleep, guard_ms=0, **kwargs), fake


def spend(budget: WeightBudget, weight: int) -> float:
    """acquire + release, as the REST client does around one request; the seconds waited."""
    waited = budget.acquire(weight)
    budget.release(weight, budget.now_ms())
    return waited


def test_acquire_within_cap_does_not_wait():
    budget, fake = make_budget()
    assert budget.cap == 90
    for _ in range(45):
        assert spend(budget, 2) == 0
    assert budget.used == 90
    assert fake.sleeps == []


def test_acquire_over_cap_waits_until_next_minute():
    budget, fake = make_budget()
    spend(budget, 89)
    waited = spend(budget, 2)
    assert waited == pytest.approx(20.0)  # from :40 to the next minute
    assert fake.sleeps == [pytest.approx(20.0)]
    assert budget.used == 2


def test_waits_even_when_injected_sleep_does_not_advance_the_clock():
    """A recording sleep must not turn the wait into a busy loop: the logical clock moves on."""
    sleeps: list[float] = []
    budget = WeightBudget(100, 0.1, clock=lambda: START, sleep=sleeps.append, guard_ms=0)
    spend(budget, 90)
    assert spend(budget, 10) == pytest.approx(20.0)
    assert spend(budget, 80) == 0
    assert spend(budget, 1) == pytest.approx(60.0)
    assert sleeps == [pytest.approx(20.0), pytest.approx(60.0)]


def test_request_heavier_than_cap_goes_alone_in_a_fresh_window():
    budget, fake = make_budget(limit=10)
    spend(budget, 1)
    assert spend(budget, 20) == pytest.approx(20.0)
    assert budget.used == 20


def test_observe_adopts_higher_server_count():
    budget, fake = make_budget()
    spend(budget, 1)
    budget.observe("85", sent_at_ms=budget.now_ms())  # another process on the same IP used 84
    assert budget.used == 85
    assert spend(budget, 10) == pytest.approx(20.0)


def test_observe_never_lowers_local_count_and_ignores_old_windows():
    budget, fake = make_budget()
    sent = budget.now_ms()
    spend(budget, 50)
    budget.observe(10, sent_at_ms=sent)
    assert budget.used == 50
    fake.sleep(30)  # next minute
    budget.observe(2000, sent_at_ms=sent)  # the answer to a request of the previous minute
    assert budget.used == 0
    budget.observe(None)
    budget.observe("garbage")
    assert budget.used == 0


def test_weight_in_flight_at_a_window_change_counts_in_the_new_window():
    budget, fake = make_budget()
    sent = budget.now_ms()
    budget.acquire(40)  # sent at :40, answer not in yet
    fake.sleep(25)  # the server may count it in the next minute
    budget.release(40, sent)
    assert budget.used == 40
    assert spend(budget, 50) == 0
    assert spend(budget, 1) == pytest.approx(55.0)  # 40 + 50 = cap: wait from :05 for the next minute
    assert budget.used == 1


def test_unreleased_weight_is_forgotten_after_the_expiry():
    budget, fake = make_budget(inflight_expiry_s=0.0)
    budget.acquire(90)  # never released (a caller that forgot)
    assert spend(budget, 1) == pytest.approx(20.0)
    assert budget.used == 1


def test_weight_in_flight_is_carried_while_the_clock_jumps_windows():
    budget, fake = make_budget()
    sent = budget.now_ms()
    budget.acquire(50)
    fake.sleep(200)  # several minutes pass (a simulated clock) before the answer
    assert budget.used == 50
    budget.release(50, sent)
    fake.sleep(60)
    assert budget.used == 0


def test_penalise_blocks_every_thread_until_the_end():
    budget, fake = make_budget()
    until = int((START + 7.5) * 1000)
    budget.penalise(until)
    budget.penalise(until - 5000)  # an earlier end never shortens a penalty
    assert spend(budget, 1) == pytest.approx(7.5)
    assert spend(budget, 1) == 0


def test_next_window_ms_is_the_following_minute():
    budget, _ = make_budget()
    assert budget.next_window_ms() == int(START * 1000) + 20_000


def test_threads_never_exceed_the_cap_in_any_window():
    budget, fake = make_budget(limit=50, headroom=0.2)
    per_window: Counter[int] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            spend(budget, 3)
            with lock:
                per_window[budget.now_ms() // 60_000] += 3

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(per_window.values()) == 8 * 25 * 3
    assert max(per_window.values()) <= budget.cap == 40


def test_funding_limiter_counts_requests_in_a_sliding_window():
    fake = FakeTime(START)
    limiter = RequestRateLimiter(limit=10, window_s=300, headroom=0.0, clock=LogicalClock(fake.time),
                                 sleep=fake.sleep)
    for _ in range(10):
        assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(300.0)
    assert fake.sleeps == [pytest.approx(300.0)]


def test_budget_funding_limiter_shares_the_budget_clock():
    budget, fake = make_budget(funding_limit=5, funding_window_s=300)
    for _ in range(4):  # cap = 5 * 0.9 -> 4
        budget.funding.acquire()
    fake.sleep(100)
    assert budget.funding.acquire() == pytest.approx(200.0)


def test_invalid_budget_arguments():
    with pytest.raises(ValueError, match="invalid weight limit"):
        WeightBudget(0)
    with pytest.raises(ValueError, match="headroom"):
        WeightBudget(100, headroom=1.0)
    with pytest.raises(ValueError, match="weight"):
        WeightBudget(100).acquire(-1)


def test_shared_budget_is_per_server():
    a = shared_budget("http://127.0.0.1:1/")
    assert shared_budget("http://127.0.0.1:1") is a
    assert shared_budget("http://127.0.0.1:2") is not a
    assert a.limit == 2400


def test_a_ban_recorded_by_one_process_is_respected_by_the_next(tmp_path):
    import subprocess
    import sys

    from marketdata_assets.binance.ratelimit import BanFile

    until = int(time.time() * 1000) + 90_000
    env = {**os.environ, "MARKETDATA_STATE_DIR": str(tmp_path)}
    record = ("from marketdata_assets.binance.ratelimit import shared_budget; "
              f"shared_budget('https://fapi.example').penalise({until}, banned=True)")
    subprocess.run([sys.executable, "-c", record], env=env, check=True, timeout=60)
    assert BanFile(tmp_path / "upstream-bans.json").read("fapi.example") == until
    read = ("from marketdata_assets.binance.ratelimit import shared_budget; "
            "print(shared_budget('https://fapi.example').banned_until_ms)")
    later = subprocess.run([sys.executable, "-c", read], env=env, check=True, timeout=60, capture_output=True,
                           text=True)
    assert later.stdout.strip() == str(until)
    assert "an IP ban recorded in" in later.stderr


def test_after_a_ban_one_request_goes_first_and_the_others_wait_for_its_answer():
    import threading

    budget, _fake = make_budget(1000, 0.0)
    budget.penalise(budget.now_ms() + 1000, banned=True)
    budget.acquire(1)  # waits the ban out, then is the probe
    sent = threading.Event()

    def second() -> None:
        budget.acquire(1)
        sent.set()

    worker = threading.Thread(target=second)
    worker.start()
    assert not sent.wait(0.3)  # real time: the second request waits for the probe's answer
    budget.release(1)
    assert sent.wait(5)
    worker.join()
