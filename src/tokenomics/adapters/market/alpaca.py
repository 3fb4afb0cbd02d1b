"""Alpaca market data: latest trade prices and historical bars for stocks and crypto (crypto as BTC/USD)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from tokenomics.adapters.alpaca_http import RateLimiter, harden, provider_error
from tokenomics.adapters.market import CachedQuotes
from tokenomics.core.errors import ProviderError, UsageProblem
from tokenomics.keys import Key

_UNITS = {"m": "Minute", "h": "Hour", "d": "Day", "w": "Week"}


def alpaca_timeframe(tf: str) -> Any:
    """The project's timeframe (15m, 1h, 1d...) as alpaca-py's TimeFrame; UsageProblem if Alpaca has no such bar."""
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    m = re.fullmatch(r"(\d+)([mhdw])", tf.strip())
    try:
        if not m:
            raise ValueError(tf)
        return TimeFrame(int(m.group(1)), TimeFrameUnit[_UNITS[m.group(2)]])
    except ValueError:
        raise UsageProblem(f"--timeframe (bars.timeframe) {tf!r} is not an Alpaca bar size",
                           hint="Alpaca bars: 1m-59m, 1h-23h, 1d or 1w") from None


class AlpacaMarketData(CachedQuotes):
    name = "alpaca"

    def __init__(self, api_key: Key, secret: Key, *, url: str | None, timeout: float,
                 limiter: RateLimiter | None = None, ttl_seconds: float = 5.0, sleep=time.sleep):
        self._keys, self.url, self.timeout, self.limiter = (api_key, secret), url, timeout, limiter
        self.sleep = sleep
        self.ttl = ttl_seconds
        self._clients: dict[tuple[str, bool], object] = {}

    def _client(self, kind: str, raw: bool = False):
        if (kind, raw) not in self._clients:
            from alpaca.data.historical.crypto import CryptoHistoricalDataClient
            from alpaca.data.historical.stock import StockHistoricalDataClient

            cls = CryptoHistoricalDataClient if kind == "crypto" else StockHistoricalDataClient
            key, secret = self._keys
            self._clients[(kind, raw)] = harden(cls(key.reveal(), secret.reveal(), raw_data=raw,
                                                    url_override=self.url), self.timeout, self.limiter,
                                                    sleep=self.sleep)
        return self._clients[(kind, raw)]

    def _latest(self, symbol: str) -> tuple[float, datetime | None]:
        """(latest trade price, that trade's time)."""
        try:
            if "/" in symbol:
                from alpaca.data.requests import CryptoLatestTradeRequest

                got = self._client("crypto").get_crypto_latest_trade(CryptoLatestTradeRequest(symbol_or_symbols=symbol))
            else:
                from alpaca.data.requests import StockLatestTradeRequest

                got = self._client("stock").get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=symbol))
            price = float(got[symbol].price)
            ts = getattr(got[symbol], "timestamp", None)
        except KeyError:
            raise ProviderError(provider=f"alpaca market data {symbol}", status=200, reason="no latest trade") from None
        except Exception as exc:  # APIError (an HTML 503 too), requests' errors, a body of the wrong shape
            raise provider_error(f"alpaca market data {symbol}", exc) from None
        if ts is not None and ts.tzinfo is None:
            from datetime import timezone

            ts = ts.replace(tzinfo=timezone.utc)
        return price, ts

    def bars(self, symbol: str, timeframe: Any, start: datetime, end: datetime, limit: int) -> list[dict]:
        """At most `limit` raw bars ({t, o, h, l, c, v, ...}) of one symbol from start to end (inclusive),
        oldest first; alpaca-py follows next_page_token until it has `limit` bars or the range is done."""
        try:
            if "/" in symbol:
                from alpaca.data.requests import CryptoBarsRequest

                got = self._client("crypto", raw=True).get_crypto_bars(CryptoBarsRequest(
                    symbol_or_symbols=symbol, timeframe=timeframe, start=start, end=end, limit=limit))
            else:
                from alpaca.data.requests import StockBarsRequest

                got = self._client("stock", raw=True).get_stock_bars(StockBarsRequest(
                    symbol_or_symbols=symbol, timeframe=timeframe, start=start, end=end, limit=limit))
            bars = got.get(symbol, []) if isinstance(got, dict) else None
            if not isinstance(bars, list) or not all(isinstance(b, dict) and "t" in b for b in bars):
                raise ValueError(f"unexpected body: bars of {symbol} are not a list of bars")
        except Exception as exc:  # APIError (an HTML 503 too), requests' errors, a body of the wrong shape
            err = provider_error(f"alpaca bars {symbol}", exc)
            if isinstance(exc, ValueError) and "unexpected body" in str(exc):
                err = ProviderError(provider=f"alpaca bars {symbol}", status=200, reason=str(exc)[:200])
            err.hint = "re-run: the fetch resumes from the last stored bar"
            raise err from None
        return list(bars)
