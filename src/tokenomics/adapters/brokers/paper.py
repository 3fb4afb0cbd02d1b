"""The paper broker: lives in the store, fills market orders at once at the market price
plus slippage, charges fees, and keeps its own book (paper_orders) like a real broker would,
so a crash between its fill and the store's bookkeeping is healed by looking the order up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tokenomics.adapters.brokers.base import Fill, OrderRequest, OrderUpdate
from tokenomics.core.money import cents, floor_to, lot_size
from tokenomics.core.portfolio import cash_flow
from tokenomics.store import Store, iso


class PaperBroker:
    name = "paper"

    def __init__(
        self,
        store: Store,
        price: Callable[[str], float],
        now: Callable[[], datetime],
        *,
        capital: float,
        slippage_bps: float,
        fee_bps: float,
        market_rules: Callable[[str], tuple[float, float, float] | None] | None = None,
    ):
        self.store, self.price, self.now = store, price, now
        self.capital, self.slippage, self.fee_rate = capital, slippage_bps / 1e4, fee_bps / 1e4
        self.market_rules = market_rules  # paper on an exchange's prices: its (step, min amount, min value)

    def _rules(self, symbol: str) -> tuple[float, float, float] | None:
        return self.market_rules(symbol) if self.market_rules else None

    def dust(self, symbol: str) -> float:
        """What the exchange cannot trade (its step or minimum amount): a rest below it closes the position."""
        rules = self._rules(symbol)
        return max(rules[0], rules[1]) if rules else 0.0

    def cash(self) -> float:
        flows = self.store.scalar(
            "SELECT COALESCE(SUM(cash_flow), 0) FROM paper_orders WHERE status = 'filled'"
        )
        return cents(self.capital + (flows or 0.0))

    def holdings(self) -> dict[str, float]:
        rows = self.store.all(
            "SELECT symbol, SUM(CASE side WHEN 'buy' THEN qty ELSE -qty END) AS qty "
            "FROM paper_orders WHERE status = 'filled' GROUP BY symbol"
        )
        return {r["symbol"]: r["qty"] for r in rows if abs(r["qty"]) > 1e-12}

    def get_order(self, client_order_id: str) -> OrderUpdate | None:
        row = self.store.one("SELECT * FROM paper_orders WHERE client_order_id = ?", [client_order_id])
        return self._update(row) if row else None

    def submit(self, req: OrderRequest) -> OrderUpdate:
        existing = self.get_order(req.client_order_id)
        if existing is not None:  # a real broker refuses a reused client_order_id; we return the original
            return existing
        mid = self.price(req.symbol)
        sign = 1 if req.side == "buy" else -1
        price = round(mid * (1 + sign * self.slippage), 8)
        status, error = "filled", ""
        rules = self._rules(req.symbol)
        step = max(lot_size(req.asset_class), rules[0]) if rules else lot_size(req.asset_class)
        if req.qty is not None:
            qty = floor_to(req.qty, step)
        else:
            qty = floor_to((req.notional or 0.0) / (price * (1 + self.fee_rate)), step)
        fee = cents(qty * price * self.fee_rate)
        flow = cash_flow(req.side, qty, price, fee)
        if qty <= 0:
            status, error = "rejected", "order quantity rounds to zero"
        elif rules and rules[1] and qty < rules[1]:
            status, error = "rejected", f"amount {qty:g} below the exchange minimum {rules[1]:g}"
        elif rules and rules[2] and qty * price < rules[2]:
            status, error = "rejected", f"order value {qty * price:.2f} below the exchange minimum {rules[2]:g}"
        elif req.side == "buy" and -flow > self.cash() + 1e-9:
            status, error = "rejected", "insufficient funds"
        elif req.side == "sell" and qty > self.holdings().get(req.symbol, 0.0) + 1e-9:
            status, error = "rejected", f"insufficient {req.symbol} to sell"
        row = {
            "client_order_id": req.client_order_id, "symbol": req.symbol, "side": req.side,
            "qty": qty if status == "filled" else 0.0, "price": price, "fee": fee if status == "filled" else 0.0,
            "cash_flow": flow if status == "filled" else 0.0, "status": status, "ts": iso(self.now()),
        }
        with self.store.tx(durable=True):  # the paper broker has the order
            self.store.insert("paper_orders", row)
        return self._update(row, error)

    @staticmethod
    def _update(row: dict, error: str = "") -> OrderUpdate:
        fills: tuple[Fill, ...] = ()
        if row["status"] == "filled":
            fills = (Fill(f"{row['client_order_id']}:1", row["qty"], row["price"], row["fee"], row["ts"]),)
        if row["status"] == "rejected" and not error:
            error = "rejected by the paper broker"
        return OrderUpdate(row["client_order_id"], row["status"], f"paper-{row['client_order_id']}", fills, error)
