"""The account over the store: risk limits, marks and equity history, loss and drawdown halts,
the portfolio the risk gate sees, and the gate's decision log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tokenomics.core import risk
from tokenomics.core.money import cents
from tokenomics.core.portfolio import equity
from tokenomics.logs import app_log, decisions_log
from tokenomics.runtime import Runtime
from tokenomics.store import iso


def limits(rt: Runtime) -> risk.RiskLimits:
    r = rt.settings.risk
    return risk.RiskLimits(r.max_open_positions, r.max_position_pct, r.min_order_usd,
                           r.daily_loss_limit_pct, r.monthly_loss_limit_pct, r.long_only,
                           r.max_leverage, r.max_drawdown_pct, dict(r.max_asset_class_pct))


def period_keys(rt: Runtime, now: datetime) -> tuple[tuple[str, datetime], tuple[str, datetime]]:
    """(day key, day start) and (month key, month start) in the risk timezone, starts in UTC."""
    tz = ZoneInfo(rt.settings.risk.timezone)
    local = now.astimezone(tz)
    day0 = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month0 = day0.replace(day=1)
    return (day0.strftime("%Y-%m-%d"), day0), (month0.strftime("%Y-%m"), month0)


def mark_to_market(rt: Runtime) -> dict:
    """Value positions at now, record an equity point, and fire loss-limit halts. Prices are fetched
    before the write transaction opens (no network I/O while the store is locked)."""
    st = rt.store
    cash = st.cash(rt.settings.capital)
    values = []
    prices = {p["symbol"]: rt.price(p["symbol"]) for p in st.positions()}
    with st.tx():
        for p in st.positions():
            if p["symbol"] not in prices:  # opened by another process since the prices were read
                continue
            price = prices[p["symbol"]]
            values.append(cents(p["qty"] * price))
            st.execute("UPDATE positions SET last_price = ?, high_water = MAX(COALESCE(high_water, 0), ?), "
                       "updated_at = ? WHERE symbol = ?", [price, price, iso(rt.now()), p["symbol"]])
        eq = equity(cash, values)
        now = rt.now()
        st.execute("INSERT OR REPLACE INTO equity(ts, cash, positions_value, equity) VALUES (?, ?, ?, ?)",
                   [iso(now), cash, cents(sum(values)), eq])
        (day, day0), (month, month0) = period_keys(rt, now)
        fired = risk.loss_halts(
            equity=eq,
            day_start=st.equity_at_or_before(day0) or st.equity_first_since(day0),
            month_start=st.equity_at_or_before(month0) or st.equity_first_since(month0),
            limits=limits(rt),
        )
        for rule, detail in fired:
            period = day if rule.startswith("daily") else month
            if st.insert_ignore("halts", [{"rule": rule, "period": period, "fired_at": iso(now), "detail": detail}]):
                app_log.warning("halt: %s (%s)", rule, detail, extra={"rule": rule, "period": period})
        latch_drawdown(rt, eq, now)
    return {"cash": cash, "positions_value": cents(sum(values)), "equity": eq}


def latch_drawdown(rt: Runtime, eq: float, now: datetime) -> None:
    """Fire the max-drawdown halt (once) when equity is max_drawdown_pct below its peak since the
    last `risk resume`; it stays until a person lifts it."""
    st = rt.store
    if st.scalar("SELECT COUNT(*) FROM halts WHERE rule = 'max_drawdown' AND lifted_at IS NULL"):
        return
    since = st.scalar("SELECT MAX(lifted_at) FROM halts WHERE rule = 'max_drawdown'") or ""
    peak = st.equity_peak(since)  # a running peak: reads only the equity rows since the last mark
    fired = risk.drawdown_halt(equity=eq, peak=max(peak or 0.0, eq), limits=limits(rt))
    if fired:
        rule, detail = fired
        st.insert_ignore("halts", [{"rule": rule, "period": iso(now), "fired_at": iso(now), "detail": detail}])
        app_log.warning("halt: %s (%s)", rule, detail, extra={"rule": rule, "period": "until risk resume"})


def active_halts(rt: Runtime) -> list[dict]:
    (day, _), (month, _) = period_keys(rt, rt.now())
    return rt.store.all(
        "SELECT * FROM halts WHERE (rule = 'daily_loss_limit' AND period = ?) "
        "OR (rule = 'monthly_loss_limit' AND period = ?) "
        "OR (rule = 'max_drawdown' AND lifted_at IS NULL) ORDER BY fired_at",
        [day, month],
    )


def cooling_symbols(rt: Runtime) -> tuple[str, ...]:
    """Symbols stopped out within risk.stop_loss_cooldown_hours of now."""
    since = rt.now() - timedelta(hours=rt.settings.risk.stop_loss_cooldown_hours)
    return tuple(r["symbol"] for r in rt.store.all(
        "SELECT DISTINCT symbol FROM trades WHERE exit_reason = 'stop_loss' AND closed_at > ? ORDER BY symbol",
        [iso(since)]))


def portfolio(rt: Runtime) -> risk.Portfolio:
    st = rt.store
    cash = st.cash(rt.settings.capital)
    positions = {p["symbol"]: cents(p["qty"] * rt.price(p["symbol"])) for p in st.positions()}
    pending: dict[str, float] = {}
    for r in st.all("SELECT symbol, notional FROM signals WHERE status = 'sized' AND side = 'buy'"):
        pending[r["symbol"]] = pending.get(r["symbol"], 0.0) + (r["notional"] or 0.0)
    for r in st.all("SELECT symbol, notional FROM orders WHERE intent = 'entry' AND status NOT IN "
                    "('filled', 'rejected', 'canceled', 'expired')"):
        pending[r["symbol"]] = pending.get(r["symbol"], 0.0) + (r["notional"] or 0.0)
    eq = equity(cash, list(positions.values()))
    classes = {sym: rt.asset_class(sym) for sym in (*positions, *pending)}
    return risk.Portfolio(cash, eq, positions, pending, tuple(h["rule"] for h in active_halts(rt)),
                          classes, cooling_symbols(rt))


def record_decision(rt: Runtime, signal_id: str, stage: str, requested: float, d: risk.GateDecision) -> None:
    rt.store.insert("risk_decisions", {
        "signal_id": signal_id, "stage": stage, "decision": d.decision, "rule": d.rule, "detail": d.detail,
        "requested": requested, "approved": d.approved, "decided_at": iso(rt.now()),
    })
    decisions_log.info("gate", extra={"signal_id": signal_id, "stage": stage, "decision": d.decision,
                                      "rule": d.rule, "detail": d.detail, "requested": requested,
                                      "approved": d.approved})


def lift_halts(rt: Runtime, reason: str) -> list[dict]:
    """Lift every latched max-drawdown halt; the drawdown peak restarts from now."""
    st = rt.store
    now = iso(rt.now())
    active = st.all("SELECT * FROM halts WHERE rule = 'max_drawdown' AND lifted_at IS NULL ORDER BY fired_at")
    with st.tx():
        st.execute("UPDATE halts SET lifted_at = ?, lifted_reason = ? WHERE rule = 'max_drawdown' "
                   "AND lifted_at IS NULL", [now, reason])
    return [{"rule": h["rule"], "fired_at": h["fired_at"], "detail": h["detail"], "lifted_at": now,
             "lifted_reason": reason} for h in active]
