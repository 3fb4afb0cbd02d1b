"""What every alpaca-py client needs here: a request timeout (alpaca-py sets none), a shared
request budget under Alpaca's 200 requests/minute, and crypto symbol normalisation."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any


class RateLimiter:
    """At most `per_minute` requests in any 60 s window (sleeps until a slot frees).

    With `path`, the window lives in that file under an advisory lock, so every process that shares
    it (a cron `fetch-news` next to `run --loop` on the same store) shares one budget."""

    def __init__(self, per_minute: int, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] | None = None, path: Path | None = None):
        self.per_minute, self.sleep, self.path = per_minute, sleep, path
        self.clock = clock or (time.time if path else time.monotonic)  # processes share wall time only
        self.sent: deque[float] = deque()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        with self.lock:
            if self.path is None:
                self._take(self.sent)
                return
            import fcntl

            with open(self.path, "a+", encoding="ascii") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes, or the process dies
                fh.seek(0)
                sent = deque(float(x) for x in fh.read().split())
                self._take(sent)
                fh.seek(0)
                fh.truncate()
                fh.write("\n".join(f"{t:.3f}" for t in sent))

    def _take(self, sent: deque[float]) -> None:
        now = self.clock()
        while sent and now - sent[0] >= 60:
            sent.popleft()
        if len(sent) >= self.per_minute:
            self.sleep(60 - (now - sent[0]))
            sent.popleft()
            now = self.clock()
        sent.append(now)


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
