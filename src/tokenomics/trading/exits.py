"""check-exits: stop-loss, take-profit, max hold and bearish news close positions through the order path.
"""

from __future__ import annotations

from tokenomics.core import risk
from tokenomics.core.exits import ExitRules, exit_reason
from tokenomics.core.money import cents
from tokenomics.runtime import Runtime
from tokenomics.store import iso, parse_ts
from tokenomics.trading.account import limits, mark_to_market, record_decision
from tokenomics.trading.orders import FINAL, apply_update, create_order, resume_unfinished, send


def exit_rules(rt: Runtime) -> ExitRules:
    e = rt.settings.exits
    return ExitRules(e.stop_loss_pct, e.take_profit_pct, e.max_hold_days, e.exit_on_bearish,
                     e.bearish_min_conviction)


def attempts(rt: Runtime, entry_order_id: str) -> list[dict]:
    """The local exit attempts of a position's exit intent, oldest first (bracket legs not included)."""
    return rt.store.all(
        "SELECT o.* FROM orders o JOIN signals s ON s.id = o.signal_id WHERE s.source = 'exit' AND s.ref = ? "
        "AND o.signal_id NOT LIKE 'leg:%' ORDER BY o.created_at, o.rowid", [entry_order_id])


def open_legs(rt: Runtime, entry_order_id: str) -> list[dict]:
    return rt.store.all(
        "SELECT * FROM orders WHERE signal_id LIKE ? AND status NOT IN ('filled', 'rejected', 'canceled', 'expired')",
        [f"leg:{entry_order_id}:%"])


def cancel_legs(rt: Runtime, legs: list[dict]) -> bool:
    """Cancel a bracket's open legs at the broker and book what the broker then says (canceled, or
    filled first). True when none is left open: only then may a local exit be sent."""
    left = False
    for leg in legs:
        upd = rt.broker.cancel(leg["client_order_id"], leg["broker_order_id"])
        if upd is None:
            left = True
            continue
        apply_update(rt, upd)
        left = left or upd.status not in FINAL
    return not left


def check_exits(rt: Runtime) -> dict:
    """Each open position: is an exit due (a rule fires now, or an exit intent from an earlier check is
    still unfilled)? An exit is an intent per position with attempts: attempt n has its own signal and
    deterministic client_order_id (`exit:<entry>`, then `exit:<entry>:<n>`), since a broker keeps ids
    unique forever; while one is working no other is sent; after a rejected, canceled or expired one
    the next check sends a new one for the quantity held. A bracketed position's open legs are
    canceled (and confirmed) before any local exit. A fault on one position leaves the others checked."""
    from tokenomics.core.errors import ProviderError
    from tokenomics.logs import app_log
    from tokenomics.trading.faults import is_permanent

    st = rt.store
    now = rt.now()
    rules = exit_rules(rt)
    results, held, errors = [], 0, []
    with st.trade_lock(rt.settings.trading.lock_timeout_seconds):
        results += resume_unfinished(rt)
        positions = st.positions()
        for p in positions:
            try:
                out = _check_one(rt, p, now, rules)
            except ProviderError as exc:
                if is_permanent(exc):
                    raise
                app_log.warning("check-exits %s: %s", p["symbol"], exc)
                errors.append(f"{p['symbol']}: {exc}")
                continue
            if out is None:
                held += 1
            else:
                results.append(out)
        if not rt.in_tick:  # a tick marks once, at its end
            mark_to_market(rt)
    closed = [r["closed"] for r in results if r.get("closed")]
    if errors and not results and len(errors) == len(positions):
        raise ProviderError("check-exits: " + "; ".join(errors)[:400])
    return {"checked": len(positions), "exits": len(closed), "held": held, "errors": len(errors),
            "realized_pnl": cents(sum(c["pnl"] for c in closed)), "rows": results}


def _check_one(rt: Runtime, p: dict, now, rules: ExitRules) -> dict | None:
    st = rt.store
    if not rt.tradable(p["symbol"], now):
        return None
    tried = attempts(rt, p["entry_order_id"])
    working = [o for o in tried if o["status"] not in FINAL]
    if working:  # an attempt is still working at the broker: never a second order beside it
        return None
    if tried and tried[-1]["status"] == "rejected" and "holds no" in (tried[-1]["error"] or "") and st.scalar(
            "SELECT COUNT(*) FROM reconcile_diffs WHERE status = 'open' AND symbol = ?", [p["symbol"]]):
        return None  # the broker holds none of it: reconcile's difference decides, not another attempt
    price = rt.price(p["symbol"])
    bearish = st.scalar(
        "SELECT MAX(conviction) FROM scores WHERE symbol = ? AND sentiment = 'bearish' "
        "AND article_created_at >= ?", [p["symbol"], p["opened_at"]])
    reason = exit_reason(
        entry_price=p["avg_price"], price=price,
        days_held=rt.calendar.trading_days_between(p["asset_class"], parse_ts(p["opened_at"]), now),
        rules=rules, bearish_conviction=bearish,
    )
    if reason is None and tried:
        reason = tried[0]["reason"]  # the intent stands until the position is gone
    if reason is None:
        return None
    legs = open_legs(rt, p["entry_order_id"])
    if legs and not cancel_legs(rt, legs):
        return None  # a cancel is pending at the broker: try again on the next check
    p = st.one("SELECT * FROM positions WHERE symbol = ?", [p["symbol"]])
    if p is None:  # a leg filled before it could be canceled: that was the exit
        return None
    n = len(tried) + 1
    sid = f"exit:{p['entry_order_id']}" + (f":{n}" if n > 1 else "")
    with st.tx():
        st.insert_ignore("signals", [{
            "id": sid, "symbol": p["symbol"], "side": "sell", "source": "exit", "strength": 1.0,
            "reason": f"{reason} at {price} (entry {p['avg_price']:.4f})" + (f", attempt {n}" if n > 1 else ""),
            "ref": p["entry_order_id"], "asset_class": p["asset_class"], "created_at": iso(now), "status": "sized",
            "status_reason": reason, "size_method": "close", "notional": cents(p["qty"] * price),
            "updated_at": iso(now),
        }])
        d = risk.gate(risk.Proposal(p["symbol"], "sell", cents(p["qty"] * price), "exit"),
                      risk.Portfolio(0, 0, {p["symbol"]: p["qty"] * price}), limits(rt))
        record_decision(rt, sid, "exit", cents(p["qty"] * price), d)
    order = create_order(rt, signal_id=sid, symbol=p["symbol"], side="sell", intent="exit",
                         reason=reason, qty=p["qty"])
    return send(rt, order) if order else None
