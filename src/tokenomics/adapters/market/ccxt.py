"""A ccxt exchange's public market data (the ticker's last price and its time): no keys, and never the
sandbox (a testnet's prices are not the market's). For the store's paper broker in paper mode."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tokenomics.adapters.market import CachedQuotes
from tokenomics.core.errors import ConfigError, ProviderError


def _ccxt() -> Any:
    try:
        import ccxt
    except ImportError:
        raise ConfigError("broker.crypto_prices: ccxt needs the ccxt library, which is not installed",
                          hint="pip install 'tokenomics[crypto]', or broker.crypto_prices: alpaca") from None
    return ccxt


class CcxtPrices(CachedQuotes):
    def __init__(self, exchange_id: str, *, url: str | None, timeout: float, ttl_seconds: float = 5.0,
                 exchange: Any = None):
        self.exchange_id, self.url, self.timeout, self.ttl = exchange_id, url, timeout, ttl_seconds
        self._ex = exchange

    @property
    def name(self) -> str:
        return f"ccxt {self.exchange_id}"

    @property
    def ex(self) -> Any:
        if self._ex is None:
            ccxt = _ccxt()
            if self.exchange_id not in ccxt.exchanges:
                raise ConfigError(f"broker.exchange: ccxt has no exchange {self.exchange_id!r}",
                                  hint="e.g. binance, kraken, coinbase")
            ex = getattr(ccxt, self.exchange_id)({"enableRateLimit": True, "timeout": int(self.timeout * 1000)})
            fm = ex.options.get("fetchMarkets") if isinstance(ex.options, dict) else None
            if isinstance(fm, dict) and "spot" in (fm.get("types") or []):  # spot pairs only: one markets
                fm["types"] = ["spot"]  # request, not the futures APIs too (blocked in places, and not traded)
            if self.url:
                from tokenomics.adapters.brokers.ccxt import _rebase

                ex.urls["api"] = _rebase(ex.urls["api"], self.url)
            self._ex = ex
        return self._ex

    def market_rules(self, symbol: str) -> tuple[float, float, float]:
        """(amount step, minimum amount, minimum order value) the exchange trades `symbol` with, so the
        paper book takes only orders the exchange would (the markets were loaded by the first price)."""
        from tokenomics.adapters.brokers.ccxt import market_rules

        ccxt = _ccxt()
        try:
            if not self.ex.markets:
                self.ex.load_markets()
            return market_rules(self.ex, self.ex.market(symbol))
        except ccxt.BaseError as exc:
            raise ProviderError(provider=f"{self.name} markets", reason=type(exc).__name__, transient=True) from None

    def _latest(self, symbol: str) -> tuple[float, datetime | None]:
        """(last price, the ticker's time) from the public ticker."""
        ccxt = _ccxt()
        from tokenomics.keys import redact

        what = f"{self.name} ticker {symbol}"
        try:
            if not self.ex.markets:
                self.ex.load_markets()
            if symbol not in self.ex.markets:
                raise ConfigError(f"universe.crypto: {self.exchange_id} lists no {symbol} (broker.crypto_prices: "
                                  "ccxt prices crypto from broker.exchange)",
                                  hint=f"use the pair as {self.exchange_id} names it (e.g. BTC/USDT on binance), "
                                  "or broker.crypto_prices: alpaca")
            t = self.ex.fetch_ticker(symbol)
        except ccxt.DDoSProtection as exc:  # 429/418 and the exchange's own rate-limit codes
            from tokenomics.adapters.brokers.ccxt import asked_to_wait

            raise asked_to_wait(self.ex, what, exc) from None
        except ccxt.BaseError as exc:
            status = getattr(exc, "status", None) if isinstance(getattr(exc, "status", None), int) else None
            raise ProviderError(provider=what, reason=f"{type(exc).__name__}: {redact(exc)[:160]}",
                                transient=not isinstance(exc, ccxt.AuthenticationError),
                                status=status) from None
        last = t.get("last") or t.get("close")
        if not last:
            raise ProviderError(provider=what, reason="the ticker has no last price", transient=True)
        ts = datetime.fromtimestamp(t["timestamp"] / 1000, timezone.utc) if t.get("timestamp") else None
        return float(last), ts
