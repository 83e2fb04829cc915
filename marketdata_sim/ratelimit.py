"""Binance's per-IP request limits: a weight budget per (aligned) minute, 429 then 418 bans (SPEC A.1).

The window clock is injectable: wall time by default; tests may drive it from the frozen market clock so
that escalation tests never depend on where a real minute boundary falls.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LimitConfig:
    weight_limit: int = 2400
    window_ms: int = 60_000
    ban_after: int = 3  # requests sent while limited before the 418 ban
    ban_ms: int = 120_000  # Binance starts bans at 2 minutes
    funding_limit: int = 500  # /fapi/v1/fundingRate: 500 requests / 5 min, outside the weight budget
    funding_window_ms: int = 300_000


@dataclass
class Verdict:
    status: int  # 200, 429 or 418
    used_weight: int
    retry_after_s: int = 0
    msg: str = ""


@dataclass
class RateLimiter:
    config: LimitConfig = field(default_factory=LimitConfig)
    clock: Callable[[], int] = field(default=lambda: int(time.time() * 1000))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.window_start = -1
        self.used = 0
        self.funding_window_start = -1
        self.funding_used = 0
        self.strikes = 0
        self.banned_until = 0
        self.total_weight = 0
        self.max_window_weight = 0
        self.count_429 = 0
        self.count_418 = 0
        self.requests: Counter[str] = Counter()

    def current_used(self) -> int:
        now = self.clock()
        return self.used if now - now % self.config.window_ms == self.window_start else 0

    def check(self, endpoint: str, weight: int, funding: bool = False, ip: str = "127.0.0.1") -> Verdict:
        """Count one request and decide its fate."""
        cfg = self.config
        with self._lock:
            now = self.clock()
            self.requests[endpoint] += 1
            window = now - now % cfg.window_ms
            if window != self.window_start:
                self.window_start, self.used = window, 0
                if now >= self.banned_until:
                    self.strikes = 0
            retry_window = max(1, math.ceil((window + cfg.window_ms - now) / 1000))
            if now < self.banned_until:
                self.count_418 += 1
                return Verdict(418, self.used, max(1, math.ceil((self.banned_until - now) / 1000)),
                               self._ban_msg(ip))
            self.used += weight
            self.total_weight += weight
            self.max_window_weight = max(self.max_window_weight, self.used)
            limited = self.used > cfg.weight_limit
            limit_text = cfg.weight_limit
            if funding and not limited:
                fwin = now - now % cfg.funding_window_ms
                if fwin != self.funding_window_start:
                    self.funding_window_start, self.funding_used = fwin, 0
                self.funding_used += 1
                if self.funding_used > cfg.funding_limit:
                    limited, limit_text = True, cfg.funding_limit
                    retry_window = max(1, math.ceil((fwin + cfg.funding_window_ms - now) / 1000))
            if not limited:
                return Verdict(200, self.used)
            self.strikes += 1
            if self.strikes > cfg.ban_after + 1:
                self.banned_until = now + cfg.ban_ms
                self.count_418 += 1
                return Verdict(418, self.used, max(1, math.ceil(cfg.ban_ms / 1000)), self._ban_msg(ip))
            self.count_429 += 1
            return Verdict(
                429, self.used, retry_window,
                f"Too many requests; current limit is {limit_text} requests per minute. Please use the "
                "websocket for live updates to avoid polling the API.",
            )

    def _ban_msg(self, ip: str) -> str:
        return (f"Way too many requests; IP({ip}) banned until {self.banned_until}. "
                "Please use the websocket for live updates to avoid bans.")

    def stats(self) -> dict:
        return {
            "total_weight": self.total_weight,
            "max_window_weight": self.max_window_weight,
            "current_window_weight": self.current_used(),
            "count_429": self.count_429,
            "count_418": self.count_418,
            "banned_until": self.banned_until,
            "requests": dict(self.requests),
            "weight_limit": self.config.weight_limit,
        }
