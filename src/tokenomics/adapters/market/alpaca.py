"""Alpaca market data: latest trade prices for stocks and crypto (crypto as BTC/USD)."""

from __future__ import annotations

import time

from tokenomics.adapters.alpaca_http import RateLimiter, harden
from tokenomics.core.errors import ProviderError
from tokenomics.keys import Key


class AlpacaMarketData:
    name = "alpaca"

    def __init__(self, api_key: Key, secret: Key, *, url: str | None, timeout: float,
                 limiter: RateLimiter | None = None, ttl_seconds: float = 5.0):
        self._keys, self.url, self.timeout, self.limiter = (api_key, secret), url, timeout, limiter
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, float]] = {}
        self._clients: dict[str, object] = {}

    def _client(self, kind: str):
        if kind not in self._clients:
            from alpaca.data.historical.crypto import CryptoHistoricalDataClient
            from alpaca.data.historical.stock import StockHistoricalDataClient

            cls = CryptoHistoricalDataClient if kind == "crypto" else StockHistoricalDataClient
            key, secret = self._keys
            self._clients[kind] = harden(cls(key.reveal(), secret.reveal(), url_override=self.url),
                                         self.timeout, self.limiter)
        return self._clients[kind]

    def price(self, symbol: str) -> float:
        """The latest trade price (cached for a few seconds: one tick asks many times)."""
        hit = self._cache.get(symbol)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        from alpaca.common.exceptions import APIError
        from requests import RequestException

        try:
            if "/" in symbol:
                from alpaca.data.requests import CryptoLatestTradeRequest

                got = self._client("crypto").get_crypto_latest_trade(CryptoLatestTradeRequest(symbol_or_symbols=symbol))
            else:
                from alpaca.data.requests import StockLatestTradeRequest

                got = self._client("stock").get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=symbol))
        except APIError as exc:
            raise ProviderError(f"alpaca market data {symbol}: HTTP {exc.status_code}: {str(exc.message)[:200]}") from None
        except RequestException as exc:
            raise ProviderError(f"alpaca market data {symbol}: {type(exc).__name__}") from None
        if symbol not in got:
            raise ProviderError(f"alpaca market data: no latest trade for {symbol}")
        price = float(got[symbol].price)
        self._cache[symbol] = (time.monotonic(), price)
        return price
