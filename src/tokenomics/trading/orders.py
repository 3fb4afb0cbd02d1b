"""THE order path: deterministic client_order_id, create (once per signal), send (ask the broker
first), apply_update (book fills, positions, closed trades), resume unfinished orders, and
`trade` (entries under the trading lock). No other module creates or sends an order or books a fill.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from tokenomics.adapters.brokers.base import OrderRequest, OrderUpdate
from tokenomics.core import risk
from tokenomics.core.money import cents
from tokenomics.core.portfolio import apply_fill, cash_flow
from tokenomics.logs import app_log, trades_log
from tokenomics.runtime import Runtime
from tokenomics.store import iso, parse_ts
from tokenomics.trading.account import (
    limits,
    mark_to_market,
    portfolio,
    record_decision,
)

FINAL = ("filled", "rejected", "canceled", "expired")


def client_order_id(signal_id: str) -> str:
    """Deterministic: the same signal can only ever make the same order id (<= 128 chars)."""
    return "tkn-" + hashlib.sha256(signal_id.encode()).hexdigest()[:24]


def apply_update(rt: Runtime, upd: OrderUpdate) -> dict:
    """Book an order update: order status, new fills, positions, closed trades. Idempotent."""
    st = rt.store
    order = st.one("SELECT * FROM orders WHERE client_order_id = ?", [upd.client_order_id])
    closed = None
    with st.tx(durable=True):  # an order the broker has must never vanish: FULL
        for f in upd.fills:
            flow = cash_flow(order["side"], f.qty, f.price, f.fee)
            if not st.insert_ignore("fills", [{
                "id": f.id, "client_order_id": upd.client_order_id, "symbol": order["symbol"],
                "side": order["side"], "qty": f.qty, "price": f.price, "fee": f.fee, "cash_flow": flow, "ts": f.ts,
            }]):
                continue  # already booked
            pos = st.one("SELECT * FROM positions WHERE symbol = ?", [order["symbol"]])
            res = apply_fill(
                qty=pos["qty"] if pos else 0.0, avg_price=pos["avg_price"] if pos else 0.0,
                cost=pos["cost"] if pos else 0.0, fees=pos["fees"] if pos else 0.0,
                side=order["side"], fill_qty=f.qty, price=f.price, fee=f.fee,
                partial=pos["realized_partial"] if pos else 0.0, sold_qty=pos["sold_qty"] if pos else 0.0,
                sold_cost=pos["sold_cost"] if pos else 0.0,
            )
            if res.realized is not None:
                closed = {
                    "entry_order_id": pos["entry_order_id"], "exit_order_id": upd.client_order_id,
                    "symbol": order["symbol"], "source": pos["source"], "qty": res.sold_qty,
                    "entry_price": pos["avg_price"], "fees": cents(res.fees),
                    "exit_price": f.price if res.sold_qty == f.qty else  # else the sells' average
                    round((res.realized + res.fees + res.sold_cost) / res.sold_qty, 6),
                    "pnl": res.realized, "return_pct": round(res.realized / res.sold_cost * 100, 4),
                    "opened_at": pos["opened_at"], "closed_at": f.ts, "exit_reason": order["reason"],
                }
                st.insert_ignore("trades", [closed])
                st.execute("DELETE FROM positions WHERE symbol = ?", [order["symbol"]])
            elif pos:
                st.execute("UPDATE positions SET qty = ?, avg_price = ?, cost = ?, fees = ?, realized_partial = ?, "
                           "sold_qty = ?, sold_cost = ?, updated_at = ? WHERE symbol = ?",
                           [res.qty, res.avg_price, res.cost, res.fees, res.partial, res.sold_qty, res.sold_cost,
                            f.ts, order["symbol"]])
            else:
                sig = st.one("SELECT source FROM signals WHERE id = ?", [order["signal_id"]])
                st.insert("positions", {
                    "symbol": order["symbol"], "qty": res.qty, "avg_price": res.avg_price, "cost": res.cost,
                    "fees": res.fees, "opened_at": f.ts, "entry_order_id": upd.client_order_id,
                    "source": sig["source"] if sig else "", "signal_id": order["signal_id"],
                    "asset_class": rt.asset_class(order["symbol"]), "high_water": f.price, "last_price": f.price,
                    "updated_at": f.ts,
                })
        all_fills = st.all("SELECT qty, price, fee FROM fills WHERE client_order_id = ?", [upd.client_order_id])
        qty = sum(r["qty"] for r in all_fills)
        avg = sum(r["qty"] * r["price"] for r in all_fills) / qty if qty else None
        st.execute(
            "UPDATE orders SET status = ?, broker_order_id = ?, filled_qty = ?, filled_avg_price = ?, fees = ?, "
            "error = ?, updated_at = ? WHERE client_order_id = ?",
            [upd.status, upd.broker_order_id, qty, avg, cents(sum(r["fee"] for r in all_fills)),
             upd.error or None, iso(rt.now()), upd.client_order_id],
        )
    trades_log.info("order %s %s", upd.status, order["symbol"], extra={
        "client_order_id": upd.client_order_id, "symbol": order["symbol"], "side": order["side"],
        "intent": order["intent"], "status": upd.status, "filled_qty": qty, "avg_price": avg,
        "error": upd.error, "reason": order["reason"]})
    if closed:
        trades_log.info("closed %s", closed["symbol"], extra={"trade": closed})
    return {"client_order_id": upd.client_order_id, "symbol": order["symbol"], "side": order["side"],
            "intent": order["intent"], "status": upd.status, "qty": qty, "price": avg, "error": upd.error,
            "closed": closed}


def send(rt: Runtime, order: dict) -> dict:
    """Send one stored order, asking the broker first so a crash can never make a second one."""
    upd = rt.broker.get_order(order["client_order_id"])
    if upd is None:
        req = OrderRequest(order["client_order_id"], order["symbol"], order["side"],
                           rt.asset_class(order["symbol"]), notional=order["notional"], qty=order["qty"])
        with rt.store.tx(durable=True):
            rt.store.execute("UPDATE orders SET status = 'submitting', submitted_at = ? WHERE client_order_id = ?",
                             [iso(rt.now()), order["client_order_id"]])
        upd = rt.broker.submit(req)
    return apply_update(rt, upd)


def create_order(rt: Runtime, *, signal_id: str, symbol: str, side: str, intent: str, reason: str,
                 notional: float | None = None, qty: float | None = None) -> dict | None:
    """Record the order for a signal (once: the signal id is unique) and mark the signal ordered."""
    coid = client_order_id(signal_id)
    with rt.store.tx(durable=True):
        new = rt.store.insert_ignore("orders", [{
            "client_order_id": coid, "signal_id": signal_id, "symbol": symbol, "side": side, "intent": intent,
            "qty": qty, "notional": notional, "reason": reason, "status": "pending", "broker": rt.broker.name,
            "created_at": iso(rt.now()), "updated_at": iso(rt.now()),
        }])
        rt.store.execute("UPDATE signals SET status = 'ordered', updated_at = ? WHERE id = ?", [iso(rt.now()), signal_id])
    return rt.store.one("SELECT * FROM orders WHERE client_order_id = ?", [coid]) if new else None


def resume_unfinished(rt: Runtime) -> list[dict]:
    """Orders recorded but not final (e.g. the process died mid-send): look up, then finish."""
    return [send(rt, o) for o in rt.store.open_orders()]


def trade(rt: Runtime) -> dict:
    """Send every sized entry signal that still passes the gate. Holds the trading lock."""
    st = rt.store
    results, rejected = [], 0
    with st.trade_lock(rt.settings.trading.lock_timeout_seconds):
        results += resume_unfinished(rt)
        mark_to_market(rt)
        if rt.store.scalar("SELECT COUNT(*) FROM reconcile_diffs WHERE status = 'open'"):
            app_log.warning("no new entries: store and broker differ (see `tokenomics reconcile`)")
            return {"orders": len(results), "filled": sum(1 for r in results if r["status"] == "filled"),
                    "rejected": 0, "blocked_by_reconcile": True, "rows": results}
        lim = limits(rt)
        max_age = timedelta(minutes=rt.settings.signals.max_age_minutes)
        for sg in st.all("SELECT * FROM signals WHERE status = 'sized' AND side = 'buy' ORDER BY created_at, id"):
            if rt.now() - parse_ts(sg["created_at"]) > max_age:
                with st.tx():
                    st.execute("UPDATE signals SET status = 'expired', status_reason = ?, updated_at = ? WHERE id = ?",
                               ["older than signals.max_age_minutes", iso(rt.now()), sg["id"]])
                continue
            if not rt.tradable(sg["symbol"]):
                continue  # stays sized until the market opens (or it expires)
            d = risk.gate(risk.Proposal(sg["symbol"], sg["side"], sg["notional"], "entry", rt.cost_rate,
                                        rt.asset_class(sg["symbol"])),
                          portfolio(rt), lim)
            if not d.accepted:
                with st.tx():
                    record_decision(rt, sg["id"], "trade", sg["notional"], d)
                    st.execute("UPDATE signals SET status = 'rejected', status_reason = ?, updated_at = ? WHERE id = ?",
                               [f"reject: {d.rule}", iso(rt.now()), sg["id"]])
                rejected += 1
                continue
            order = create_order(rt, signal_id=sg["id"], symbol=sg["symbol"], side="buy", intent="entry",
                                 reason=sg["source"], notional=d.approved)
            if order:
                results.append(send(rt, order))
        mark_to_market(rt)
    return {"orders": len(results), "filled": sum(1 for r in results if r["status"] == "filled"),
            "rejected": rejected + sum(1 for r in results if r["status"] == "rejected"), "rows": results}
