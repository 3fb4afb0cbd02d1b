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


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def retry_after(headers: Any, default: float | None) -> float | None:
    """Seconds a 429/503 asks us to wait (Retry-After: seconds or an HTTP date), else `default`."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        return max(0.0, when.timestamp() - time.time())


class _Retry(Exception):
    """A response worth asking again for (429, or a 5xx of a GET)."""

    def __init__(self, response: Any):
        super().__init__(response.status_code)
        self.response = response


def harden(client: Any, timeout: float, limiter: RateLimiter | None = None, *, attempts: int = 4,
           backoff: float = 1.0, max_wait: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> Any:
    """Give an alpaca-py REST client a timeout on every request, a shared rate limiter, and retries.

    Retried (tenacity, at most `attempts` requests): a 429 (any method: the request was refused, so
    asking again cannot duplicate it), waiting what `Retry-After` says (never less), else an
    exponential backoff; a 5xx or a connection reset of a GET. A POST is never resent after a
    failure that may have reached the broker (the order path looks it up by its id instead). A wait
    longer than `max_wait` is not made: the last answer goes back to the caller. alpaca-py's own
    fixed 3 s retry loop is switched off (`_retry = 0`).
    """
    import requests
    from tenacity import RetryCallState, Retrying, retry_if_exception

    session = client._session  # alpaca-py's requests.Session; it passes no timeout of its own
    plain = session.request

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        fallback = min(max_wait, backoff * 2 ** (state.attempt_number - 1))
        return retry_after(exc.response.headers, fallback) if isinstance(exc, _Retry) else fallback

    def stop(state: RetryCallState) -> bool:  # out of attempts, or asked to wait longer than max_wait
        return state.attempt_number >= max(1, attempts) or wait(state) > max_wait

    def request(method: str, url: str, **kw: Any):
        kw.setdefault("timeout", timeout)
        idempotent = method.upper() in ("GET", "HEAD")

        def once():
            if limiter is not None:
                limiter.acquire()
            resp = plain(method, url, **kw)
            if resp.status_code == 429 or (idempotent and resp.status_code in RETRY_STATUSES):
                raise _Retry(resp)
            return resp

        def worth_it(exc: BaseException) -> bool:  # a reset or refused connection of a GET; never a timeout
            return isinstance(exc, _Retry) or (idempotent and isinstance(exc, requests.ConnectionError)
                                               and not isinstance(exc, requests.Timeout))

        try:
            return Retrying(stop=stop, wait=wait, sleep=sleep, retry=retry_if_exception(worth_it),
                            reraise=True)(once)
        except _Retry as exc:  # out of attempts: the last answer goes back, alpaca-py raises APIError
            return exc.response

    session.request = request
    client._retry = 0  # alpaca-py's own 429/504 loop sleeps a fixed 3 s and ignores Retry-After
    return client


def provider_error(provider: str, exc: BaseException) -> "Exception":
    """Map whatever alpaca-py or requests raised to the project's ProviderError: provider, HTTP status
    and a short reason (the server's `message` when its body is JSON, else the start of the body),
    with every configured key redacted."""
    import json

    from tokenomics.core.errors import ProviderError
    from tokenomics.keys import redact

    status = getattr(exc, "status_code", None)
    if status is not None:  # alpaca.common.exceptions.APIError; its .message parses the body as JSON
        body = str(exc)
        try:
            doc = json.loads(body)
            reason = str(doc.get("message") or doc) if isinstance(doc, dict) else body
        except ValueError:
            reason = "non-JSON error body: " + " ".join(body.split())[:120]
        response = getattr(exc, "response", None)
        wait = retry_after(getattr(response, "headers", None), None) if status in (429, 503) else None
        return ProviderError(provider=provider, status=status, reason=redact(reason)[:200], retry_after=wait)
    name = type(exc).__name__
    if isinstance(exc, ValueError):  # a 200 whose body is not JSON (requests' JSONDecodeError)
        return ProviderError(provider=provider, reason=f"body is not JSON ({name})", transient=True)
    return ProviderError(provider=provider, reason=f"{name}: " + redact(exc)[:160], transient=True)


def canonical(symbol: str, crypto: list[str]) -> str:
    """Map Alpaca's BTCUSD (positions, news) back to the universe's BTC/USD."""
    for pair in crypto:
        if pair.replace("/", "") == symbol:
            return pair
    return symbol
