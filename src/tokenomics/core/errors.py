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


class ProviderError(TokenomicsError):
    """An outside service failed (network, API error): exit 1."""

    exit_code = 1
