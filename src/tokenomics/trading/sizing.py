"""size: every sizing method's candidate for a new signal, then the pre-trade risk gate.
"""

from __future__ import annotations

import json

from tokenomics.core import risk
from tokenomics.core import sizing as sizing_methods
from tokenomics.core.bars import minutes_timeframe
from tokenomics.core.metrics import periods_per_year
from tokenomics.core.sizing import fixed_range
from tokenomics.runtime import Runtime
from tokenomics.store import iso
from tokenomics.trading.account import limits, portfolio, record_decision


def recent_bars(rt: Runtime, symbol: str, n: int) -> tuple[str, list[dict]]:
    """The symbol's last n bars closed by now: stored bars of the source and timeframe of its most recent
    bar opened before now, else (sim) the sim market's. Never a bar that closes after now (a
    backtest's store holds its whole window)."""
    from datetime import timedelta

    from tokenomics.core.bars import timeframe_seconds

    now = rt.now()
    latest = rt.store.one("SELECT source, timeframe FROM bars WHERE symbol = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
                          [symbol, iso(now)])
    if latest:
        closed_by = now - timedelta(seconds=timeframe_seconds(latest["timeframe"]))
        rows = rt.store.all("SELECT * FROM (SELECT * FROM bars WHERE symbol = ? AND source = ? AND timeframe = ? "
                            "AND ts <= ? ORDER BY ts DESC LIMIT ?) ORDER BY ts",
                            [symbol, latest["source"], latest["timeframe"], iso(closed_by), n])
        return latest["timeframe"], rows
    tf = minutes_timeframe(rt.settings.sim.step_minutes)
    if rt.mode != "sim" or symbol not in rt.settings.universe.symbols:
        return tf, []
    step = rt.sim_step()
    bars = rt.world.bars(max(step - 3 * n, 1), step, (symbol,))
    return tf, bars[-n:]


def asset_volatility(rt: Runtime, symbol: str) -> dict:
    """Annualised volatility of a symbol from its recent bars (sizing.vol_estimator)."""
    s = rt.settings.sizing
    tf, bars = recent_bars(rt, symbol, s.vol_lookback_bars)
    ppy = periods_per_year(tf, rt.asset_class(symbol))
    closes = [b["close"] for b in bars]
    if s.vol_estimator == "atr":
        vol = sizing_methods.atr_volatility([b["high"] for b in bars], [b["low"] for b in bars], closes, ppy)
    else:
        vol = sizing_methods.realized_volatility(closes, ppy)
    return {"estimator": s.vol_estimator, "timeframe": tf, "bars": len(bars), "annualized": vol}


def size_candidates(rt: Runtime, r: dict, equity: float) -> dict:
    """Every sizing method's dollars for one signal, with the evidence behind each."""
    s = rt.settings
    z = s.sizing
    fixed = fixed_range(r["strength"], min_usd=z.min_usd, max_usd=z.max_usd,
                        floor=min(s.sentiment.min_conviction / 100.0, 0.99))
    returns = [t["return_pct"] / 100.0 for t in rt.store.all(
        "SELECT return_pct FROM trades WHERE source = ? ORDER BY closed_at DESC LIMIT ?",
        [r["source"], z.kelly_lookback_trades])]
    stats = sizing_methods.TradeStats.of(returns)
    est = sizing_methods.kelly_estimate(stats, prior_trades=z.kelly_prior_trades,
                                        prior_win_rate=z.kelly_prior_win_rate, prior_payoff=z.kelly_prior_payoff)
    vol = asset_volatility(rt, r["symbol"])
    candidates = {
        "fixed": fixed,
        "kelly": sizing_methods.kelly(r["strength"], equity=equity, estimate=est, fraction=z.kelly_fraction),
        "vol-target": sizing_methods.vol_target(r["strength"], equity=equity, asset_vol=vol["annualized"],
                                                target_vol=s.risk.target_volatility_pct / 100.0,
                                                slots=s.risk.max_open_positions),
    }
    history = []
    for t in rt.store.all(
        "SELECT t.return_pct, sg.size_detail FROM trades t JOIN orders o ON o.client_order_id = t.entry_order_id "
        "JOIN signals sg ON sg.id = o.signal_id WHERE t.source = ? AND sg.size_detail IS NOT NULL "
        "ORDER BY t.closed_at DESC LIMIT ?", [r["source"], z.adaptive_lookback_trades]):
        history.append((json.loads(t["size_detail"])["candidates"], t["return_pct"]))
    weights = sizing_methods.adaptive_weights(history)
    candidates["adaptive"] = sizing_methods.adaptive(candidates, weights)
    return {
        "candidates": candidates, "strength": r["strength"], "equity": equity,
        "kelly": {"trades": stats.n, "win_rate": round(est.win_rate, 4), "payoff": round(est.payoff, 4),
                  "full_kelly": round(est.full, 4), "fraction": z.kelly_fraction},
        "volatility": vol, "adaptive_weights": {m: round(w, 4) for m, w in weights.items()},
        "adaptive_trades": len(history),
    }


def size(rt: Runtime, method: str | None = None) -> dict:
    s = rt.settings
    st = rt.store
    method = method or s.sizing.method
    rows = st.all("SELECT * FROM signals WHERE status = 'new' ORDER BY created_at, id")
    out = []
    lim = limits(rt)
    for r in rows:
        pf = portfolio(rt)
        detail = {"method": method, **size_candidates(rt, r, pf.equity)}
        requested = detail["candidates"][method]
        d = risk.gate(risk.Proposal(r["symbol"], r["side"], requested, "entry", rt.cost_rate,
                                    rt.asset_class(r["symbol"])), pf, lim)
        with st.tx():
            record_decision(rt, r["id"], "size", requested, d)
            st.execute(
                "UPDATE signals SET status = ?, status_reason = ?, size_method = ?, notional = ?, updated_at = ?, "
                "size_detail = ? WHERE id = ? AND status = 'new'",
                ["sized" if d.accepted else "rejected", f"{d.decision}: {d.rule}", method,
                 d.approved if d.accepted else None, iso(rt.now()), json.dumps(detail), r["id"]],
            )
        out.append({"signal_id": r["id"], "symbol": r["symbol"], "method": method, "requested": requested,
                    "decision": d.decision, "approved": d.approved, "rule": d.rule})
    return {"sized": sum(1 for o in out if o["decision"] != "reject"),
            "rejected": sum(1 for o in out if o["decision"] == "reject"), "rows": out}
