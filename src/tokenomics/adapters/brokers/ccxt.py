"""A crypto exchange through ccxt (exchange id from config; sandbox/testnet unless live).

Market orders carry the deterministic client_order_id (ccxt's unified `clientOrderId`); amounts
are rounded to the market's precision and checked against its minimums before anything is sent;
exchange errors map onto the broker contract: insufficient funds and invalid orders are
rejections, a duplicate id or a lost answer is looked up, network trouble is a ProviderError
(the order stays pending and is looked up by its id on the next run). Also the market data
(ticker, OHLCV) for exits and sizing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from tokenomics.adapters.brokers.base import Fill, OrderRequest, OrderUpdate
from tokenomics.config import BrokerSettings
from tokenomics.core.errors import ProviderError
from tokenomics.keys import Key, redact

STATUS = {"open": "submitted", "closed": "filled", "canceled": "canceled", "expired": "expired",
          "rejected": "rejected"}


def _rebase(urls: Any, base: str) -> Any:
    """Point every API URL of an exchange at another scheme and host (tests, proxies)."""
    if isinstance(urls, dict):
        return {k: _rebase(v, base) for k, v in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        u, b = urlparse(urls), urlparse(base)
        return u._replace(scheme=b.scheme, netloc=b.netloc).geturl()
    return urls


def _ts(obj: dict) -> str:
    """An order's or trade's time in the store's one format (UTC ISO to the second, +00:00): ccxt gives
    milliseconds (`timestamp`) and `…:45.993Z` strings, which SQL would compare as text against the rest."""
    from datetime import datetime, timezone

    from tokenomics.store import iso

    ms = obj.get("lastTradeTimestamp") or obj.get("timestamp")
    if ms:
        return iso(datetime.fromtimestamp(int(ms) / 1000, timezone.utc))
    text = obj.get("datetime")
    return iso(datetime.fromisoformat(str(text).replace("Z", "+00:00"))) if text else ""


def market_rules(ex: Any, market: dict) -> tuple[float, float, float]:
    """(amount step, minimum amount, minimum order value) of a ccxt market; 0 where it sets none."""
    import ccxt

    step = market.get("precision", {}).get("amount")
    if step is not None and ex.precisionMode != ccxt.TICK_SIZE:
        step = 10.0 ** -float(step)
    limits = market.get("limits", {})
    return (float(step or 0.0), float(limits.get("amount", {}).get("min") or 0.0),
            float(limits.get("cost", {}).get("min") or 0.0))


def asked_to_wait(ex: Any, what: str, exc: BaseException) -> ProviderError:
    """A rate-limit answer as a transient error carrying the exchange's Retry-After (seconds), when it sent
    one: the loop then leaves the exchange alone until then (provider_health.retry_until)."""
    from tokenomics.adapters.alpaca_http import retry_after

    wait = retry_after(getattr(ex, "last_response_headers", None), None)
    return ProviderError(f"{what}: rate limit exceeded ({type(exc).__name__})"
                         + (f"; the exchange asks us to wait {wait:.0f} s" if wait else "; try again later"),
                         provider=what, transient=True, retry_after=wait)


class CcxtBroker:
    name = "ccxt"

    def __init__(self, settings: BrokerSettings, api_key: Key, secret: Key, password: Key | None, *,
                 sandbox: bool, booked: Callable[[str], tuple[float, float]],
                 order_symbol: Callable[[str], str | None], exchange: Any = None):
        self.s, self.sandbox, self.booked, self.order_symbol = settings, sandbox, booked, order_symbol
        self._keys = (api_key, secret, password)
        self._ex = exchange

    @property
    def ex(self):
        if self._ex is None:
            import ccxt

            if not hasattr(ccxt, self.s.exchange):
                raise ProviderError(f"broker.exchange: ccxt has no exchange {self.s.exchange!r}")
            key, secret, password = self._keys
            cfg = {"apiKey": key.reveal(), "secret": secret.reveal(), "enableRateLimit": True,
                   "timeout": int(self.s.timeout_seconds * 1000)}
            if password is not None:
                cfg["password"] = password.reveal()
            ex = getattr(ccxt, self.s.exchange)(cfg)
            if self.sandbox:
                ex.set_sandbox_mode(True)
            if self.s.exchange_url:
                ex.urls["api"] = _rebase(ex.urls["api"], self.s.exchange_url)
            self._ex = ex
        return self._ex

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        import ccxt

        try:
            if not self.ex.markets:
                self.ex.load_markets()
            return fn()
        except ccxt.AuthenticationError:
            raise ProviderError(f"{self.s.exchange} {what}: authentication failed (check CCXT_API_KEY/CCXT_SECRET)") from None
        except ccxt.DDoSProtection as exc:  # 429/418 and the exchange's own rate-limit codes
            raise asked_to_wait(self.ex, f"{self.s.exchange} {what}", exc) from None
        except ccxt.NetworkError as exc:
            raise ProviderError(f"{self.s.exchange} {what}: network error ({type(exc).__name__})") from None
        except ccxt.BadSymbol:
            raise ProviderError(f"{self.s.exchange} {what}: unknown symbol") from None

    # --- market data -----------------------------------------------------------------------
    def price(self, symbol: str) -> float:
        t = self._call(f"ticker {symbol}", lambda: self.ex.fetch_ticker(symbol))
        last = t.get("last") or t.get("close")
        if not last:
            raise ProviderError(f"{self.s.exchange}: no last price for {symbol}")
        return float(last)

    def ohlcv(self, symbol: str, timeframe: str = "1h", since_ms: int | None = None,
              limit: int | None = None) -> list[list[float]]:
        return self._call(f"ohlcv {symbol}", lambda: self.ex.fetch_ohlcv(symbol, timeframe, since_ms, limit))

    # --- orders ----------------------------------------------------------------------------
    def get_order(self, client_order_id: str) -> OrderUpdate | None:
        symbol = self.order_symbol(client_order_id)
        if symbol is None:
            return None
        orders = self._call("orders", lambda: self.ex.fetch_orders(symbol, None, 100))
        for o in orders:
            if o.get("clientOrderId") == client_order_id:
                return self._update(client_order_id, o)
        return None

    def prepare(self, req: OrderRequest) -> tuple[float, str]:
        """(amount rounded to the market's precision, '' or why it cannot be sent)."""
        market = self.ex.market(req.symbol)
        price = self.price(req.symbol) if req.qty is None or market["limits"]["cost"].get("min") else None
        amount = req.qty if req.qty is not None else (req.notional or 0.0) / price
        amount = float(self.ex.amount_to_precision(req.symbol, amount)) if amount > 0 else 0.0
        lim = market["limits"]
        if amount <= 0 or (lim["amount"].get("min") and amount < lim["amount"]["min"]):
            return amount, f"amount {amount} below the exchange minimum {lim['amount'].get('min')}"
        if price and lim["cost"].get("min") and amount * price < lim["cost"]["min"]:
            return amount, f"order value {amount * price:.2f} below the exchange minimum {lim['cost']['min']}"
        return amount, ""

    def dust(self, symbol: str) -> float:
        """The smallest amount the market trades (its amount step or minimum, whichever is larger): a
        balance below it cannot be sold and is not a position."""
        step, min_amount, _ = market_rules(self.ex, self._call("markets", lambda: self.ex.market(symbol)))
        return max(step, min_amount)

    def free(self, currency: str) -> float:
        bal = self._call("balance", lambda: self.ex.fetch_balance())
        return float((bal.get("free") or {}).get(currency) or 0.0)

    def submit(self, req: OrderRequest) -> OrderUpdate:
        import ccxt

        if req.side == "sell" and req.qty is not None:  # sell what is free, never more (a fee may have come out of it)
            free = self.free(req.symbol.split("/")[0])
            req = OrderRequest(req.client_order_id, req.symbol, req.side, req.asset_class, None, min(req.qty, free))
        amount, problem = self._call(f"prepare {req.symbol}", lambda: self.prepare(req))
        if problem:
            return OrderUpdate(req.client_order_id, "rejected", error=problem)
        try:
            o = self.ex.create_order(req.symbol, "market", req.side, amount, None,
                                     {"clientOrderId": req.client_order_id})
        except (ccxt.DuplicateOrderId, ccxt.InvalidOrder) as exc:
            if not isinstance(exc, ccxt.DuplicateOrderId) and "duplicate order" not in str(exc).lower():
                return OrderUpdate(req.client_order_id, "rejected", error=f"invalid order: {redact(exc)[:200]}")
            # Binance answers a used newClientOrderId with -2010 "Duplicate order sent." (ccxt InvalidOrder):
            # the order exists, so it is looked up again, never marked rejected
            found = self.get_order(req.client_order_id)
            if found is None:
                raise ProviderError(provider=self.s.exchange, reason=(
                    f"submit {req.symbol}: the exchange says client order id {req.client_order_id} exists but does "
                    "not list it yet; the order stays pending and is looked up on the next run"),
                    transient=True) from None
            return found
        except ccxt.InsufficientFunds as exc:
            return OrderUpdate(req.client_order_id, "rejected", error=f"insufficient funds: {redact(exc)[:200]}")
        except ccxt.NetworkError:
            found = self.get_order(req.client_order_id)  # the exchange may have taken it before the answer was lost
            if found is not None:
                return found
            raise ProviderError(f"{self.s.exchange} submit {req.symbol}: network error; the order stays pending "
                                "and is looked up by its client_order_id on the next run") from None
        except ccxt.ExchangeError as exc:
            raise ProviderError(f"{self.s.exchange} submit {req.symbol}: {type(exc).__name__}") from None
        return self._update(req.client_order_id, o)

    def _update(self, coid: str, o: dict) -> OrderUpdate:
        filled = float(o.get("filled") or 0)
        status = STATUS.get(o.get("status") or "open", "submitted")
        if status == "submitted" and filled > 0:
            status = "partially_filled"
        avg = float(o.get("average") or o.get("price") or 0)
        fills: tuple[Fill, ...] = ()
        done_qty, done_value = self.booked(coid)
        if filled > done_qty + 1e-12 and avg > 0:
            qty = filled - done_qty
            quote = o.get("symbol", "/").split("/")[-1]
            fee_cost, fee_currency = 0.0, ""
            if status == "filled":  # the order's fee, in the currency the exchange charged it in
                fees: dict[str, float] = {}
                for fee in (o.get("fees") or ([o["fee"]] if o.get("fee") else [])):
                    if fee and fee.get("cost") and fee.get("currency"):
                        fees[fee["currency"]] = fees.get(fee["currency"], 0.0) + float(fee["cost"])
                if fees:
                    fee_currency = max(fees, key=lambda c: (c == quote, fees[c]))
                    fee_cost = round(fees[fee_currency], 12)
                    if fee_currency == quote:
                        fee_currency = ""
            ts = _ts(o)
            fills = (Fill(f"ccxt:{o.get('id')}:{filled:.9g}", round(qty, 12), round((filled * avg - done_value) / qty, 8),
                          fee_cost, ts, fee_currency),)
        return OrderUpdate(coid, status, str(o.get("id") or ""), fills, "")

    # --- account ---------------------------------------------------------------------------
    def positions(self) -> dict[str, float]:
        bal = self._call("balance", lambda: self.ex.fetch_balance())
        return {k: float(v) for k, v in (bal.get("total") or {}).items() if v}

    def has_market(self, symbol: str) -> bool:
        return bool(self._call("markets", lambda: symbol in self.ex.markets))

    def sells(self, symbol: str, since: str) -> list[dict]:
        """This account's sell trades of a pair since an ISO time, newest first (a hand close, or a
        sale made on the exchange's own screen); fees counted only when paid in the quote currency."""
        from tokenomics.store import parse_ts

        since_ms = int(parse_ts(since).timestamp() * 1000)
        got = self._call(f"trades {symbol}", lambda: self.ex.fetch_my_trades(symbol, since_ms, 100))
        quote = symbol.split("/")[-1]
        out = []
        for t in got or []:
            if t.get("side") != "sell" or not t.get("amount") or not t.get("price"):
                continue
            fee = t.get("fee") or {}
            out.append({"order_id": str(t.get("order") or t.get("id") or ""), "client_order_id": "",
                        "qty": float(t["amount"]), "price": float(t["price"]),
                        "fee": float(fee.get("cost") or 0) if fee.get("currency") == quote else 0.0,
                        "ts": _ts(t), "type": str(t.get("type") or "")})
        return sorted(out, key=lambda r: r["ts"], reverse=True)

    def check(self) -> str:
        n = len([v for v in self.positions().values() if v])
        return f"{self.s.exchange} ({'sandbox' if self.sandbox else 'LIVE'}): balance readable, {n} non-zero assets"
