"""Errors that carry the process exit code the CLI contract promises."""


class TokenomicsError(Exception):
    """A failure with a user-facing message; exit_code follows DESIGN.md."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class ConfigError(TokenomicsError):
    """Bad configuration or bad usage: exit 2."""

    exit_code = 2


class UsageProblem(TokenomicsError):
    exit_code = 2


class Refused(TokenomicsError):
    """Refused by a risk rule or a halt: exit 3."""

    exit_code = 3


# HTTP statuses that will not get better by asking again: bad key, no permission, bad request, gone
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 422})


class ProviderError(TokenomicsError):
    """An outside service failed (network, API error, a body that is not what its docs say): exit 1.

    `provider` names the service ("alpaca news", "gemini", "binance"), `status` is the HTTP status
    when there was an answer (None for a network failure or a bad body), `reason` a short text.
    `transient` says whether asking again later may succeed: network failures, 429 and 5xx are
    transient; 400/401/403/404/405/410/422 (a bad key, a refused or malformed request) are
    permanent; a body of the wrong shape is transient (a gateway's error page) unless said otherwise.
    The message is built from these fields; callers redact provider text before passing it in.
    `retry_after`: the seconds a 429/503 asked us to wait (its Retry-After header), else None.
    """

    exit_code = 1

    def __init__(self, message: str = "", *, provider: str = "", status: int | None = None, reason: str = "",
                 transient: bool | None = None, hint: str = "", retry_after: float | None = None):
        if not message:
            message = f"{provider}: " + (f"HTTP {status}: " if status else "") + (reason or "failed")
        super().__init__(message, hint=hint)
        self.provider, self.status, self.reason = provider, status, reason or message
        if transient is None:
            transient = status not in PERMANENT_STATUSES
        self.transient = transient
        self.retry_after = retry_after  # seconds the provider asked us to wait (Retry-After), when it said

    @property
    def permanent(self) -> bool:
        return not self.transient
