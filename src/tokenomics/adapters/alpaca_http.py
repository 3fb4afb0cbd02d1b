"""What every alpaca-py client needs here: a request timeout (alpaca-py sets none), a shared
request budget under Alpaca's 200 requests/minute, and crypto symbol normalisation."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any


class RateLimiter:
    """At most `per_minute` requests in any 60 s window (sleeps until a slot frees)."""

    def __init__(self, per_minute: int, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.per_minute, self.sleep, self.clock = per_minute, sleep, clock
        self.sent: deque[float] = deque()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        with self.lock:
            now = self.clock()
            while self.sent and now - self.sent[0] >= 60:
                self.sent.popleft()
            if len(self.sent) >= self.per_minute:
                self.sleep(60 - (now - self.sent[0]))
                self.sent.popleft()
                now = self.clock()
            self.sent.append(now)


def harden(client: Any, timeout: float, limiter: RateLimiter | None = None, retry_wait: int = 3) -> Any:
    """Give an alpaca-py REST client a timeout on every request and a shared rate limiter."""
    session = client._session  # alpaca-py's requests.Session; it passes no timeout of its own
    plain = session.request

    def request(method: str, url: str, **kw: Any):
        if limiter is not None:
            limiter.acquire()
        kw.setdefault("timeout", timeout)
        return plain(method, url, **kw)

    session.request = request
    client._retry_wait = retry_wait  # alpaca-py's own 429/504 retry pause, seconds
    return client


def canonical(symbol: str, crypto: list[str]) -> str:
    """Map Alpaca's BTCUSD (positions, news) back to the universe's BTC/USD."""
    for pair in crypto:
        if pair.replace("/", "") == symbol:
            return pair
    return symbol
