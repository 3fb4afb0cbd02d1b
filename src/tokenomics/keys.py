"""API keys: read from the environment, else from ./.env; never from the YAML, never printed.

`Key` wraps a secret so an accidental str()/repr()/log of it shows only a placeholder; the raw
value is handed to an SDK with .reveal() at the one place that needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

from tokenomics.core.errors import ConfigError

# provider -> the environment variables it needs (alternatives within a tuple: first set wins)
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "alpaca": (("ALPACA_API_KEY",), ("ALPACA_SECRET_KEY",)),
    "gemini": (("GOOGLE_API_KEY", "GEMINI_API_KEY"),),
    "ccxt": (("CCXT_API_KEY",), ("CCXT_SECRET",)),
}
OPTIONAL = ("CCXT_PASSWORD",)


class Key:
    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str):
        self.name, self._value = name, value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"<{self.name}: set>"

    __str__ = __repr__


def _dotenv() -> dict[str, str]:
    path = Path(".env")
    if not path.exists():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v}


def lookup(name: str) -> Key | None:
    value = os.environ.get(name) or _dotenv().get(name)
    return Key(name, value) if value else None


def status(provider: str) -> dict[str, bool]:
    """Which of a provider's variables are set (names only, never values)."""
    return {name: lookup(name) is not None for group in REQUIRED[provider] for name in group}


def require(provider: str) -> list[Key]:
    """The provider's keys in REQUIRED order, or ConfigError naming the missing variables."""
    out, missing = [], []
    for group in REQUIRED[provider]:
        key = next((k for k in (lookup(n) for n in group) if k is not None), None)
        if key is None:
            missing.append(" or ".join(group))
        else:
            out.append(key)
    if missing:
        raise ConfigError(f"{provider}: missing {', '.join(missing)} in the environment or .env",
                          hint="see .env.example; keys never go in the YAML")
    return out


def _configured_values() -> list[tuple[str, str]]:
    names = [n for groups in REQUIRED.values() for group in groups for n in group] + list(OPTIONAL)
    env = _dotenv()
    out = []
    for name in dict.fromkeys(names):
        for value in (os.environ.get(name), env.get(name)):
            if value and len(value) >= 6 and (name, value) not in out:
                out.append((name, value))
    return out


def redact(text: object) -> str:
    """The text with every configured key's value (and its URL-encoded form) replaced by [NAME].

    For any provider text before it is stored, logged or printed: a gateway that echoes a key in
    its error page must not put it in the store, the logs or `doctor`'s output."""
    from urllib.parse import quote

    out = str(text)
    for name, value in sorted(_configured_values(), key=lambda nv: -len(nv[1])):
        for form in dict.fromkeys((value, quote(value, safe=""))):
            if form in out:
                out = out.replace(form, f"[{name}]")
    return out
