"""Live prices for the store's paper broker in paper mode (freqtrade's dry-run): equities from Alpaca
market data, crypto from Alpaca or a ccxt exchange's public ticker (broker.crypto_prices). A fill takes
the last trade only when it is fresh (broker.max_price_age_seconds); a stale or missing price is a
transient ProviderError: no fill, the order stays pending and is sent again on the next tick."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tokenomics.core.errors import ConfigError, ProviderError


class LivePrices:
    name = "live"

    def __init__(self, sources: dict[str, Any], asset_class: Callable[[str], str], *, max_age_seconds: float,
                 now: Callable[[], datetime]):
        self.sources, self.asset_class, self.max_age, self.now = sources, asset_class, max_age_seconds, now

    def source(self, symbol: str) -> Any:
        cls = self.asset_class(symbol)
        if cls not in self.sources:  # a holding of a class the universe no longer has: no source was built
            raise ConfigError(f"universe: {symbol} needs a live price but the universe lists no {cls}",
                              hint=f"add it back under universe.{'crypto' if cls == 'crypto' else 'equities'} "
                              "until the position is closed")
        return self.sources[cls]

    def price(self, symbol: str) -> float:
        """The latest price (marks, exits, sizing): whatever its age."""
        return self.source(symbol).price(symbol)

    def fill_price(self, symbol: str) -> float:
        """The latest price if its trade is at most max_age_seconds old (a source that gives no time is
        taken at its word); else a transient ProviderError naming the source, so nothing fills."""
        src = self.source(symbol)
        price, ts = src.quote(symbol)
        if ts is not None:
            age = (self.now() - ts).total_seconds()
            if age > self.max_age:
                prefix = "alpaca market data" if src.name == "alpaca" else f"{src.name} ticker"
                raise ProviderError(provider=f"{prefix} {symbol}", reason=(
                    f"stale price: the last trade ({price:g} at {ts.isoformat(timespec='seconds')}) is {age:.0f} s "
                    f"old, over broker.max_price_age_seconds ({self.max_age:g}); no fill until a fresh one"),
                    transient=True)
        return price

    def market_rules(self, symbol: str) -> tuple[float, float, float] | None:
        """The exchange's (amount step, minimum amount, minimum order value) when the price source is
        an exchange that has them (ccxt), else None (Alpaca: the paper book's own lot)."""
        src = self.source(symbol)
        return src.market_rules(symbol) if hasattr(src, "market_rules") else None

    def describe(self) -> dict[str, str]:
        """asset class -> where its prices come from."""
        out = {}
        for cls, src in self.sources.items():
            out[cls] = "alpaca market data (latest trade)" if src.name == "alpaca" else f"{src.name} public ticker"
        return out
