"""The Alpaca broker (equities and crypto; paper unless live is explicitly allowed).

Orders carry the deterministic client_order_id; orders.send looks it up before any submit, and
a submit whose answer is lost (timeout, connection drop) looks it up again at once, so the
server's copy is found instead of a second order being sent. Equity entries go as a bracket
(stop-loss and take-profit held by Alpaca, so they survive a crash) when whole shares allow;
crypto (no brackets at Alpaca) keeps its exits in check-exits. Fills are reported as deltas
against what the store has booked, so partial fills are booked once each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tokenomics.adapters.alpaca_http import RateLimiter, canonical, harden
from tokenomics.adapters.brokers.base import Fill, Leg, OrderRequest, OrderUpdate
from tokenomics.core.errors import ProviderError
from tokenomics.keys import Key
from tokenomics.store import iso

STATUS = {
    "new": "submitted", "accepted": "submitted", "pending_new": "submitted", "accepted_for_bidding": "submitted",
    "calculated": "submitted", "held": "submitted", "pending_cancel": "submitted", "pending_replace": "submitted",
    "replaced": "submitted", "done_for_day": "submitted", "stopped": "submitted", "suspended": "submitted",
    "partially_filled": "partially_filled", "filled": "filled",
    "canceled": "canceled", "expired": "expired", "rejected": "rejected",
}


class AlpacaBroker:
    name = "alpaca"

    def __init__(self, api_key: Key, secret: Key, *, paper: bool, url: str | None, timeout: float,
                 booked: Callable[[str], tuple[float, float]], price: Callable[[str], float],
                 crypto: list[str], stop_loss_pct: float, take_profit_pct: float, bracket: bool = True,
                 limiter: RateLimiter | None = None):
        self._keys, self.paper, self.url, self.timeout = (api_key, secret), paper, url, timeout
        self.booked, self.price, self.crypto = booked, price, crypto
        self.stop_loss_pct, self.take_profit_pct, self.bracket = stop_loss_pct, take_profit_pct, bracket
        self.limiter = limiter
        self._client: Any = None

    @property
    def client(self):
        if self._client is None:
            from alpaca.trading.client import TradingClient

            key, secret = self._keys
            self._client = harden(TradingClient(key.reveal(), secret.reveal(), paper=self.paper,
                                                url_override=self.url), self.timeout, self.limiter)
        return self._client

    # --- orders ----------------------------------------------------------------------------
    def get_order(self, client_order_id: str) -> OrderUpdate | None:
        from alpaca.common.exceptions import APIError
        from requests import RequestException

        try:
            order = self.client.get_order_by_client_id(client_order_id)
        except APIError as exc:
            if exc.status_code == 404:
                return None
            raise ProviderError(f"alpaca get order: HTTP {exc.status_code}: {_msg(exc)}") from None
        except RequestException as exc:
            raise ProviderError(f"alpaca get order: {type(exc).__name__}; nothing was sent") from None
        return self._update(order)

    def request_for(self, req: OrderRequest) -> Any:
        from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest, StopLossRequest, TakeProfitRequest

        side = OrderSide.BUY if req.side == "buy" else OrderSide.SELL
        common = {"symbol": req.symbol,  # orders take crypto as BTC/USD
                   "side": side, "client_order_id": req.client_order_id}
        if req.asset_class == "crypto":  # crypto: gtc/ioc only, simple orders only
            sized = {"notional": round(req.notional, 2)} if req.qty is None else {"qty": req.qty}
            return MarketOrderRequest(**common, **sized, time_in_force=TimeInForce.GTC)
        if req.side == "buy" and req.qty is None and self.bracket:
            ref = self.price(req.symbol)
            shares = math.floor((req.notional or 0) / ref)
            if shares >= 1:  # brackets need whole shares
                return MarketOrderRequest(
                    **common, qty=shares, time_in_force=TimeInForce.GTC, order_class=OrderClass.BRACKET,
                    take_profit=TakeProfitRequest(limit_price=round(ref * (1 + self.take_profit_pct / 100), 2)),
                    stop_loss=StopLossRequest(stop_price=round(ref * (1 - self.stop_loss_pct / 100), 2)),
                )
        sized = {"notional": round(req.notional, 2)} if req.qty is None else {"qty": req.qty}
        return MarketOrderRequest(**common, **sized, time_in_force=TimeInForce.DAY)

    def submit(self, req: OrderRequest) -> OrderUpdate:
        from alpaca.common.exceptions import APIError
        from requests import RequestException

        if req.side == "sell" and req.qty is not None:  # never sell more than the broker holds
            held = self.positions().get(req.symbol, 0.0)  # (crypto fees come out of the coin received)
            if held <= 0:
                return OrderUpdate(req.client_order_id, "rejected",
                                   error=f"alpaca holds no {req.symbol}: nothing sent")
            req = OrderRequest(req.client_order_id, req.symbol, req.side, req.asset_class, None, min(req.qty, held))
        try:
            order = self.client.submit_order(self.request_for(req))
        except RequestException as exc:
            # the server may have accepted it before the answer was lost: look it up, never resend blindly
            found = self.get_order(req.client_order_id)
            if found is not None:
                return found
            raise ProviderError(f"alpaca submit {req.symbol}: {type(exc).__name__}; the order stays pending "
                                "and is looked up by its client_order_id on the next run") from None
        except APIError as exc:
            if exc.status_code is not None and exc.status_code < 500:
                if "client_order_id" in _msg(exc):  # already there: a duplicate id means it was sent before
                    found = self.get_order(req.client_order_id)
                    if found is not None:
                        return found
                return OrderUpdate(req.client_order_id, "rejected", error=f"alpaca: {_msg(exc)}")
            raise ProviderError(f"alpaca submit {req.symbol}: HTTP {exc.status_code}: {_msg(exc)}") from None
        return self._update(order)

    def _update(self, order: Any) -> OrderUpdate:
        coid = order.client_order_id
        status = STATUS.get(str(getattr(order.status, "value", order.status)), "submitted")
        total_qty = float(order.filled_qty or 0)
        avg = float(order.filled_avg_price or 0)
        fills: tuple[Fill, ...] = ()
        done_qty, done_value = self.booked(coid)
        if total_qty > done_qty + 1e-12 and avg > 0:
            qty = total_qty - done_qty
            price = (total_qty * avg - done_value) / qty
            ts = iso(order.filled_at or order.updated_at)  # the store's one format: UTC, to the second
            fills = (Fill(f"alpaca:{order.id}:{total_qty:.9g}", round(qty, 9), round(price, 6), 0.0, ts),)
        legs = tuple(Leg(g.client_order_id, str(g.id), "stop_loss" if "stop" in _kind(g) else "take_profit",
                         STATUS.get(str(getattr(g.status, "value", g.status)), "submitted"), float(g.qty or 0))
                     for g in (getattr(order, "legs", None) or []))
        return OrderUpdate(coid, status, str(order.id), fills, "", legs)

    def cancel(self, client_order_id: str, broker_order_id: str) -> OrderUpdate | None:
        """Cancel an open order (a bracket leg before a local exit) and return the broker's view of it
        afterwards: canceled, or filled if it filled first, or still open if the cancel is pending."""
        from alpaca.common.exceptions import APIError
        from requests import RequestException

        try:
            self.client.cancel_order_by_id(broker_order_id)
        except APIError as exc:
            if exc.status_code not in (404, 422):  # 422: no longer cancelable (filled, canceled): look it up
                raise ProviderError(f"alpaca cancel order: HTTP {exc.status_code}: {_msg(exc)}") from None
        except RequestException as exc:
            raise ProviderError(f"alpaca cancel order: {type(exc).__name__}") from None
        return self.get_order(client_order_id)

    # --- account ---------------------------------------------------------------------------
    def positions(self) -> dict[str, float]:
        try:
            got = self.client.get_all_positions()
        except Exception as exc:
            raise ProviderError(f"alpaca positions: {_describe(exc)}") from None
        return {canonical(p.symbol, self.crypto): float(p.qty) for p in got}

    def holdings(self) -> list[dict]:
        """Every open position as the broker values it: symbol (universe form), qty, current price
        and value at that price (used for holdings outside the universe, which we have no price feed for)."""
        try:
            got = self.client.get_all_positions()
        except Exception as exc:
            raise ProviderError(f"alpaca positions: {_describe(exc)}") from None
        out = []
        for p in got:
            price = float(p.current_price) if p.current_price is not None else None
            value = float(p.qty) * price if price is not None else (
                float(p.market_value) if p.market_value is not None else None)
            out.append({"symbol": canonical(p.symbol, self.crypto), "qty": float(p.qty), "price": price,
                        "value": value})
        return out

    def sells(self, symbol: str, since: str) -> list[dict]:
        """Filled (or partly filled) sell orders of a symbol since an ISO time, newest first: what
        a hand close, or a stop held at the broker, sold for."""
        from alpaca.trading.enums import OrderSide, QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        from tokenomics.store import parse_ts

        # no `after`: Alpaca filters on submission time, and a bracket's stop leg is submitted with the entry
        req = GetOrdersRequest(status=QueryOrderStatus.CLOSED, side=OrderSide.SELL, symbols=[symbol], limit=100,
                               direction="desc")
        try:
            got = self.client.get_orders(req)
        except Exception as exc:
            raise ProviderError(f"alpaca orders {symbol}: {_describe(exc)}") from None
        out = []
        for o in got:
            qty, avg = float(o.filled_qty or 0), float(o.filled_avg_price or 0)
            filled = o.filled_at or o.updated_at
            if (qty <= 0 or avg <= 0 or canonical(o.symbol.replace("/", ""), self.crypto) != symbol
                    or filled is None or filled < parse_ts(since)):
                continue
            kind = str(getattr(o.order_type or o.type, "value", o.order_type or o.type) or "")
            out.append({"order_id": str(o.id), "client_order_id": o.client_order_id, "qty": qty, "price": avg,
                        "fee": 0.0, "ts": iso(filled),
                        "type": kind})
        return sorted(out, key=lambda r: r["ts"], reverse=True)

    def account(self) -> dict:
        try:
            a = self.client.get_account()
        except Exception as exc:
            raise ProviderError(f"alpaca account: {_describe(exc)}") from None
        return {"status": str(getattr(a.status, "value", a.status)), "cash": float(a.cash or 0),
                "equity": float(a.equity or 0), "trading_blocked": bool(a.trading_blocked)}

    def cash(self) -> float:
        return self.account()["cash"]

    def clock(self) -> dict:
        try:
            c = self.client.get_clock()
        except Exception as exc:
            raise ProviderError(f"alpaca clock: {_describe(exc)}") from None
        return {"timestamp": iso(c.timestamp), "is_open": c.is_open,  # Alpaca answers in New York time
                "next_open": iso(c.next_open), "next_close": iso(c.next_close)}


def _kind(order: Any) -> str:
    return str(getattr(order.order_type or order.type, "value", order.order_type or order.type) or "")


def _msg(exc: Any) -> str:
    from tokenomics.keys import redact  # a gateway may echo a key in its error text

    try:
        return redact(exc.message)[:300]
    except Exception:  # alpaca-py's .message parses JSON and fails on a non-JSON body
        return redact(exc)[:300]


def _describe(exc: Exception) -> str:
    code = getattr(exc, "status_code", None)
    return f"HTTP {code}: {_msg(exc)}" if code else type(exc).__name__
