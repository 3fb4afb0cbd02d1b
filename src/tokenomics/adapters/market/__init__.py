"""Market data for the live modes: latest prices (exits, sizing) and bars."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import datetime


class CachedQuotes(ABC):
    """price()/quote() over a source's `_latest(symbol)`, each symbol's answer kept `ttl` seconds:
    one tick asks for the same price many times (sizing, the gate, exits, the mark)."""

    ttl: float = 5.0

    @abstractmethod
    def _latest(self, symbol: str) -> tuple[float, datetime | None]:
        """(the latest price, its time or None) from the source itself, uncached."""

    def price(self, symbol: str) -> float:
        return self.quote(symbol)[0]

    def quote(self, symbol: str) -> tuple[float, datetime | None]:
        """(the latest price, its time or None), from the cache when younger than ttl."""
        cache = self.__dict__.setdefault("_cache", {})
        hit = cache.get(symbol)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1], hit[2]
        price, ts = self._latest(symbol)
        cache[symbol] = (time.monotonic(), price, ts)
        return price, ts
