"""Provider faults in the live loop: which errors are transient (HTTP 429/5xx, timeouts, dropped
connections, an answer that is not JSON) and which are permanent (a refused key: HTTP 401/403, bad
config); which provider a step leans on; the back-off of a failing provider; and each provider's
health (last error and since when), kept in the store's provider_health table for `status`."""

from __future__ import annotations

import re
from datetime import timedelta

from tokenomics.core.errors import ConfigError, ProviderError, UsageProblem
from tokenomics.store import iso

KEY_HINTS = {"alpaca": "ALPACA_API_KEY and ALPACA_SECRET_KEY", "gemini": "GOOGLE_API_KEY (or GEMINI_API_KEY)",
             "ccxt": "CCXT_API_KEY and CCXT_SECRET"}
MAX_SKIP = 15  # ticks


def status_code(exc: BaseException) -> int | None:
    """The HTTP status behind an error (its own, or that of the error it was raised from)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        code = getattr(e, "status_code", None)
        if isinstance(code, int) and 100 <= code < 600:
            return code
        m = re.search(r"\bHTTP (\d{3})\b", str(e))
        if m:
            return int(m.group(1))
        e = e.__cause__ or e.__context__
    return None


def is_permanent(exc: BaseException) -> bool:
    """A fault that waiting will not fix: bad config or usage, or the provider refusing the key."""
    if isinstance(exc, (ConfigError, UsageProblem)):
        return True
    if getattr(exc, "permanent", False):
        return True
    if status_code(exc) in (401, 403):
        return True
    text = str(exc).lower()
    return "authentication failed" in text or "not authorized" in text


def provider_of(rt, step: str, exc: BaseException | None = None) -> str:
    """The provider a step leans on (the one blamed for its failure), as `role (name)`."""
    s = rt.settings
    if rt.mode == "sim":
        return "sim"
    text = str(exc or "")
    if text.startswith(("alpaca market data", "alpaca bars")):
        return "market data (alpaca)"
    if text.startswith(f"ccxt {s.broker.exchange} ticker"):
        return f"market data (ccxt {s.broker.exchange})"
    if step == "fetch-news":
        return f"news ({s.news.provider})"
    if step == "score":
        return f"scorer ({s.sentiment.provider})"
    if step in ("signal", "size", "mark-to-market") and s.broker.provider == "alpaca":
        return "market data (alpaca)"
    if s.broker.provider == "paper":  # paper mode at live prices: the book is local, the prices are not
        alpaca = bool(s.universe.equities) or s.broker.crypto_prices == "alpaca"
        return "market data (alpaca)" if alpaca else f"market data (ccxt {s.broker.exchange})"
    name = s.broker.provider if s.broker.provider != "ccxt" else f"ccxt {s.broker.exchange}"
    return f"broker ({name})"


def step_provider(rt, step: str) -> str | None:
    """The provider whose health a step's success vouches for (and whose back-off it waits on):
    None for the local steps (signal, size), which may not call any provider."""
    return None if step in ("signal", "size") else provider_of(rt, step)


def permanent_error(rt, step: str, exc: BaseException) -> ProviderError | BaseException:
    """What to stop the loop with: config errors as they are (exit 2); a refused key as a ProviderError
    naming the provider and the variables to check (exit 1)."""
    if isinstance(exc, (ConfigError, UsageProblem)):
        return exc
    provider = provider_of(rt, step, exc)
    name = next((k for k in KEY_HINTS if k in provider), "")
    hint = (f"check {KEY_HINTS[name]} (paper keys for paper mode, live keys for live) and the account's "
            "permissions, then start the loop again") if name else "fix the provider's settings and start again"
    return ProviderError(f"{provider} refused the request in step {step}: {exc}; the loop stopped", hint=hint)


class Health:
    """Each provider's health in the store: consecutive failures, since when, the last error, and a
    back-off that leaves a failing provider's optional steps alone for 0, 1, 3, 7, 15 ... ticks, and
    at least until the time its Retry-After asked for (a 429 asking for longer than a request waits)."""

    def __init__(self, rt):
        self.rt = rt

    def _row(self, provider: str) -> dict | None:
        return self.rt.store.one("SELECT * FROM provider_health WHERE provider = ?", [provider])

    def should_skip(self, provider: str) -> bool:
        row = self._row(provider)
        if row and row["retry_until"] and iso(self.rt.now()) < row["retry_until"]:
            return True  # the provider asked us to wait (Retry-After) and that time has not come
        if not row or row["skip_ticks"] <= 0:
            return False
        with self.rt.store.tx():
            self.rt.store.execute("UPDATE provider_health SET skip_ticks = skip_ticks - 1 WHERE provider = ?",
                                  [provider])
        return True

    def failed(self, provider: str, exc: BaseException) -> tuple[int, str | None]:
        """Record a failure; returns the ticks the provider's optional steps now wait, and the time they
        wait for at least when the provider asked for it (Retry-After), else None."""
        now = self.rt.now()
        row = self._row(provider)
        failures = (row["failures"] if row else 0) + 1
        skip = min(2 ** (failures - 1) - 1, MAX_SKIP)
        wait = getattr(exc, "retry_after", None)
        until = iso(now + timedelta(seconds=wait)) if wait else None
        with self.rt.store.tx():
            self.rt.store.execute(
                "INSERT INTO provider_health(provider, status, failures, failing_since, last_error, last_error_at, "
                "skip_ticks, retry_until) VALUES (?, 'failing', ?, ?, ?, ?, ?, ?) ON CONFLICT(provider) DO UPDATE "
                "SET status = 'failing', failures = excluded.failures, "
                "failing_since = COALESCE(provider_health.failing_since, excluded.failing_since), "
                "last_error = excluded.last_error, last_error_at = excluded.last_error_at, "
                "skip_ticks = excluded.skip_ticks, retry_until = excluded.retry_until",
                [provider, failures, iso(now), f"{type(exc).__name__}: {exc}"[:500], iso(now), skip, until])
        return skip, until

    def ok(self, provider: str) -> None:
        with self.rt.store.tx():
            self.rt.store.execute(
                "INSERT INTO provider_health(provider, status, last_ok_at) VALUES (?, 'ok', ?) "
                "ON CONFLICT(provider) DO UPDATE SET status = 'ok', failures = 0, failing_since = NULL, "
                "skip_ticks = 0, retry_until = NULL, last_ok_at = excluded.last_ok_at", [provider, iso(self.rt.now())])


def health_rows(store) -> list[dict]:
    return store.all("SELECT provider, status, failures, failing_since, last_error, last_error_at, last_ok_at, "
                     "retry_until FROM provider_health ORDER BY provider")
