"""THE order path: deterministic client_order_id, create (once per signal), send (ask the broker
first), apply_update (book fills, positions, closed trades), resume unfinished orders, and
`trade` (entries under the trading lock). No other module creates or sends an order or books a fill.
"""

from __future__ import annotations

import hashlib
import json
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


def _position_fill(rt: Runtime, symbol: str, side: str, f) -> tuple[float, float, float]:
    """(qty, price, fee in cash) a fill moves the position by. A buy whose fee the broker took out of the
    coin received adds only what is held (the fee's value stays in the cost: the price is the gross
    over the net quantity); a fee in a third currency (BNB) is recorded on the fill, not in cash."""
    base = symbol.split("/")[0] if "/" in symbol else ""
    if not f.fee_currency or f.fee_currency == (symbol.split("/")[1] if "/" in symbol else "USD"):
        return f.qty, f.price, f.fee
    if side == "buy" and f.fee_currency == base and 0 < f.fee < f.qty:
        net = round(f.qty - f.fee, 12)
        return net, f.qty * f.price / net, 0.0
    return f.qty, f.price, 0.0


def _close_trade(st, closed: dict) -> dict:
    """Write the round trip's trades row. A late fill of the entry after its position closed reopens the
    position; its close merges into the same row (one row per entry order: every unit bought, every
    fill's cash flow)."""
    prev = st.one("SELECT * FROM trades WHERE entry_order_id = ?", [closed["entry_order_id"]])
    if prev is None:
        st.insert_ignore("trades", [closed])
        return closed
    qty = prev["qty"] + closed["qty"]
    entry = (prev["qty"] * prev["entry_price"] + closed["qty"] * closed["entry_price"]) / qty
    merged = {**closed, "qty": qty, "entry_price": round(entry, 6), "opened_at": prev["opened_at"],
              "exit_price": round((prev["qty"] * prev["exit_price"] + closed["qty"] * closed["exit_price"]) / qty, 6),
              "fees": cents(prev["fees"] + closed["fees"]), "pnl": cents(prev["pnl"] + closed["pnl"]),
              "exit_reason": prev["exit_reason"]}
    merged["return_pct"] = round(merged["pnl"] / (entry * qty) * 100, 4) if entry * qty else 0.0
    st.execute("UPDATE trades SET exit_order_id = ?, qty = ?, entry_price = ?, exit_price = ?, fees = ?, pnl = ?, "
               "return_pct = ?, closed_at = ? WHERE entry_order_id = ?",
               [merged["exit_order_id"], qty, merged["entry_price"], merged["exit_price"], merged["fees"],
                merged["pnl"], merged["return_pct"], merged["closed_at"], merged["entry_order_id"]])
    return merged


def _register_legs(rt: Runtime, order: dict, upd: OrderUpdate) -> None:
    """A bracket's legs are our own orders: recorded (once) as exit orders of the entry, so their fills
    are booked like any exit's, with the broker's price, and a local exit knows to cancel them first."""
    now = iso(rt.now())
    for leg in upd.legs:
        sid = f"leg:{upd.client_order_id}:{leg.kind}"
        rt.store.insert_ignore("signals", [{
            "id": sid, "symbol": order["symbol"], "side": "sell", "source": "exit", "strength": 1.0,
            "reason": f"bracket {leg.kind.replace('_', '-')} leg held at the broker", "ref": upd.client_order_id,
            "asset_class": rt.asset_class(order["symbol"]), "created_at": now, "status": "ordered",
            "status_reason": leg.kind, "size_method": "bracket", "notional": None, "updated_at": now}])
        rt.store.insert_ignore("orders", [{
            "client_order_id": leg.client_order_id, "signal_id": sid, "symbol": order["symbol"], "side": "sell",
            "intent": "exit", "qty": leg.qty, "notional": None, "reason": leg.kind, "status": leg.status,
            "broker": rt.broker.name, "broker_order_id": leg.broker_order_id, "created_at": now,
            "submitted_at": now, "updated_at": now}])


def apply_update(rt: Runtime, upd: OrderUpdate) -> dict:
    """Book an order update: order status, new fills, positions, closed trades. Idempotent.

    A sell fill beyond the position the store holds (a late fill of our own exit after the position was
    booked closed) never raises: the fill and its cash are booked, the position closes with what it
    had, and the excess is flagged as an open `overfill` difference that `reconcile` shows and
    `reconcile --accept` resolves (no new entries until then)."""
    st = rt.store
    order = st.one("SELECT * FROM orders WHERE client_order_id = ?", [upd.client_order_id])
    closed = None
    # what is left below the market's step after a sale cannot be sold: the sale closes the position
    # (asked before the transaction: no network I/O inside it)
    dust = rt.broker.dust(order["symbol"]) if upd.fills and order["side"] == "sell" and hasattr(rt.broker, "dust") \
        else 0.0
    with st.tx(durable=True):  # an order the broker has must never vanish: FULL
        for f in upd.fills:
            qty_in, price_in, fee_in = _position_fill(rt, order["symbol"], order["side"], f)
            flow = cash_flow(order["side"], f.qty, f.price, fee_in)
            if not st.insert_ignore("fills", [{
                "id": f.id, "client_order_id": upd.client_order_id, "symbol": order["symbol"],
                "side": order["side"], "qty": f.qty, "price": f.price, "fee": f.fee, "cash_flow": flow, "ts": f.ts,
                "fee_currency": f.fee_currency or None,
            }]):
                continue  # already booked
            pos = st.one("SELECT * FROM positions WHERE symbol = ?", [order["symbol"]])
            held = pos["qty"] if pos else 0.0
            if order["side"] == "sell" and qty_in > held + 1e-9:
                st.insert("reconcile_diffs", {
                    "found_at": iso(rt.now()), "kind": "overfill", "symbol": order["symbol"],
                    "client_order_id": upd.client_order_id, "store_view": json.dumps(held),
                    "broker_view": json.dumps(qty_in), "status": "open", "resolved_at": None})
                app_log.warning("over-fill: %s sold %s of %s but the store held %s; flagged for reconcile",
                                upd.client_order_id, qty_in, order["symbol"], held)
                if pos is None:
                    continue
                qty_in = held
            elif order["side"] == "sell" and 0 < held - qty_in < dust:
                price_in, qty_in = qty_in * price_in / held, held  # the dust's cost is written off in the trade
            res = apply_fill(
                qty=held, avg_price=pos["avg_price"] if pos else 0.0,
                cost=pos["cost"] if pos else 0.0, fees=pos["fees"] if pos else 0.0,
                side=order["side"], fill_qty=qty_in, price=price_in, fee=fee_in,
                partial=pos["realized_partial"] if pos else 0.0, sold_qty=pos["sold_qty"] if pos else 0.0,
                sold_cost=pos["sold_cost"] if pos else 0.0,
            )
            if res.realized is not None:
                closed = _close_trade(st, {
                    "entry_order_id": pos["entry_order_id"], "exit_order_id": upd.client_order_id,
                    "symbol": order["symbol"], "source": pos["source"], "qty": res.sold_qty,
                    "entry_price": pos["avg_price"], "fees": cents(res.fees),
                    "exit_price": price_in if res.sold_qty == qty_in else  # else the sells' average
                    round((res.realized + res.fees + res.sold_cost) / res.sold_qty, 6),
                    "pnl": res.realized, "return_pct": round(res.realized / res.sold_cost * 100, 4),
                    "opened_at": pos["opened_at"], "closed_at": f.ts, "exit_reason": order["reason"],
                })
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
        all_fills = st.all("SELECT qty, price, fee, fee_currency FROM fills WHERE client_order_id = ?",
                           [upd.client_order_id])
        qty = sum(r["qty"] for r in all_fills)
        avg = sum(r["qty"] * r["price"] for r in all_fills) / qty if qty else None
        st.execute(
            "UPDATE orders SET status = ?, broker_order_id = ?, filled_qty = ?, filled_avg_price = ?, fees = ?, "
            "error = ?, updated_at = ? WHERE client_order_id = ?",
            [upd.status, upd.broker_order_id, qty, avg,
             cents(sum(r["fee"] for r in all_fills if not r["fee_currency"])),
             upd.error or None, iso(rt.now()), upd.client_order_id],
        )
        _register_legs(rt, order, upd)
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


def look_up(rt: Runtime, order: dict) -> dict | None:
    """Book the broker's view of an order it has acknowledged (never resubmitted: a bracket leg is
    not ours to send, and an acknowledged order the broker cannot find is a matter for a person)."""
    upd = rt.broker.get_order(order["client_order_id"])
    if upd is None:
        app_log.warning("the broker does not know order %s (%s), which it acknowledged",
                        order["client_order_id"], order["status"])
        return None
    return apply_update(rt, upd)


def resume_unfinished(rt: Runtime, failed: list[dict] | None = None) -> list[dict]:
    """Orders recorded but not final: one never sent (the process died mid-send) is looked up, then
    sent; one the broker acknowledged is looked up. Each order on its own: a transient fault on one
    look-up leaves that order open for the next run (listed in `failed`) and the others go on. Inside a
    loop tick a resting bracket leg is looked up once (reconcile, check-exits and trade all resume)."""
    from tokenomics.core.errors import ProviderError
    from tokenomics.trading.faults import is_permanent

    out = []
    for o in rt.store.open_orders():
        leg = (o["signal_id"] or "").startswith("leg:")  # a bracket leg resting at the broker (_register_legs)
        if leg and rt.in_tick and o["client_order_id"] in rt.legs_seen:
            continue  # looked up earlier in this tick; a sale in the tick cancels the legs at the broker first
        try:
            r = send(rt, o) if o["status"] in ("pending", "submitting") else look_up(rt, o)
            if leg and rt.in_tick:
                rt.legs_seen.add(o["client_order_id"])
        except ProviderError as exc:
            if is_permanent(exc):
                raise
            app_log.warning("order %s stays open: %s", o["client_order_id"], exc)
            if failed is not None:
                failed.append(o)
            continue
        if r is not None:
            out.append(r)
    return out


def trade(rt: Runtime) -> dict:
    """Send every sized entry signal that still passes the gate. Holds the trading lock."""
    st = rt.store
    results, rejected = [], 0
    with st.trade_lock(rt.settings.trading.lock_timeout_seconds):
        results += resume_unfinished(rt)
        sized = st.all("SELECT * FROM signals WHERE status = 'sized' AND side = 'buy' ORDER BY created_at, id")
        if sized or not rt.in_tick:  # the gate reads the halts at now's prices (a tick marks once, at its end)
            mark_to_market(rt)
        if rt.store.scalar("SELECT COUNT(*) FROM reconcile_diffs WHERE status = 'open'"):
            app_log.warning("no new entries: store and broker differ (see `tokenomics reconcile`)")
            return {"orders": len(results), "filled": sum(1 for r in results if r["status"] == "filled"),
                    "rejected": 0, "blocked_by_reconcile": True, "rows": results}
        lim = limits(rt)
        max_age = timedelta(minutes=rt.settings.signals.max_age_minutes)
        for sg in sized:
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
        if not rt.in_tick:
            mark_to_market(rt)
    return {"orders": len(results), "filled": sum(1 for r in results if r["status"] == "filled"),
            "rejected": rejected + sum(1 for r in results if r["status"] == "rejected"), "rows": results}
