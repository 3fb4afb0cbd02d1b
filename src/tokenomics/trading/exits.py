"""check-exits: stop-loss, take-profit, max hold and bearish news close positions through the order path.
"""

from __future__ import annotations

from tokenomics.core import risk
from tokenomics.core.exits import ExitRules, exit_reason
from tokenomics.core.money import cents
from tokenomics.runtime import Runtime
from tokenomics.store import iso, parse_ts
from tokenomics.trading.account import limits, mark_to_market, record_decision
from tokenomics.trading.orders import create_order, resume_unfinished, send


def exit_rules(rt: Runtime) -> ExitRules:
    e = rt.settings.exits
    return ExitRules(e.stop_loss_pct, e.take_profit_pct, e.max_hold_days, e.exit_on_bearish,
                     e.bearish_min_conviction)


def check_exits(rt: Runtime) -> dict:
    st = rt.store
    now = rt.now()
    rules = exit_rules(rt)
    results, held = [], 0
    with st.trade_lock(rt.settings.trading.lock_timeout_seconds):
        results += resume_unfinished(rt)
        positions = st.positions()
        for p in positions:
            if not rt.tradable(p["symbol"], now):
                held += 1
                continue
            price = rt.price(p["symbol"])
            bearish = st.scalar(
                "SELECT MAX(conviction) FROM scores WHERE symbol = ? AND sentiment = 'bearish' "
                "AND article_created_at >= ?", [p["symbol"], p["opened_at"]])
            reason = exit_reason(
                entry_price=p["avg_price"], price=price,
                days_held=rt.calendar.trading_days_between(p["asset_class"], parse_ts(p["opened_at"]), now),
                rules=rules, bearish_conviction=bearish,
            )
            if reason is None:
                held += 1
                continue
            sid = f"exit:{p['entry_order_id']}"
            with st.tx():
                st.insert_ignore("signals", [{
                    "id": sid, "symbol": p["symbol"], "side": "sell", "source": "exit", "strength": 1.0,
                    "reason": f"{reason} at {price} (entry {p['avg_price']:.4f})", "ref": p["entry_order_id"],
                    "asset_class": p["asset_class"], "created_at": iso(now), "status": "sized",
                    "status_reason": reason, "size_method": "close", "notional": cents(p["qty"] * price),
                    "updated_at": iso(now),
                }])
                d = risk.gate(risk.Proposal(p["symbol"], "sell", cents(p["qty"] * price), "exit"),
                              risk.Portfolio(0, 0, {p["symbol"]: p["qty"] * price}), limits(rt))
                record_decision(rt, sid, "exit", cents(p["qty"] * price), d)
            order = create_order(rt, signal_id=sid, symbol=p["symbol"], side="sell", intent="exit",
                                 reason=reason, qty=p["qty"])
            if order:
                results.append(send(rt, order))
        mark_to_market(rt)
    closed = [r["closed"] for r in results if r.get("closed")]
    return {"checked": len(positions), "exits": len(closed), "held": held,
            "realized_pnl": cents(sum(c["pnl"] for c in closed)), "rows": results}
