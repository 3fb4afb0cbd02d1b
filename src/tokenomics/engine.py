"""The chain's steps over the store: fetch-news, score, signal, size, trade, check-exits.

Each step reads its work from the store, calls core for every decision and an adapter for
every outside effect, writes the result back in short transactions, and returns a summary.
The commands and `run` (and backtests) call these same functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tokenomics.adapters.brokers.base import OrderRequest, OrderUpdate
from tokenomics.core import risk
from tokenomics.core.exits import ExitRules, exit_reason
from tokenomics.core.models import Article
from tokenomics.core.money import cents
from tokenomics.core.news import find_syndicated, story_key
from tokenomics.core.portfolio import apply_fill, cash_flow, equity
from tokenomics.core.signals import decide_entry
from tokenomics.core import sizing as sizing_methods
from tokenomics.core.metrics import periods_per_year
from tokenomics.core.sizing import fixed_range
from tokenomics.logs import app_log, decisions_log, trades_log
from tokenomics.runtime import Runtime
from tokenomics.store import iso, parse_ts

FINAL = ("filled", "rejected", "canceled", "expired")


# --- news ------------------------------------------------------------------------------------
def article_row(a: Article, fetched_at: datetime, duplicate_of: str | None = None) -> dict:
    return {
        "id": a.id, "provider": a.provider, "headline": a.headline, "summary": a.summary,
        "symbols": json.dumps(list(a.symbols)), "source": a.source, "url": a.url,
        "created_at": iso(a.created_at), "fetched_at": iso(fetched_at),
        "status": "duplicate" if duplicate_of else "pending", "attempts": 0, "error": None,
        "duplicate_of": duplicate_of,
    }


def article_json(a: Article) -> dict:
    return {"id": a.id, "provider": a.provider, "headline": a.headline, "summary": a.summary,
            "symbols": list(a.symbols), "source": a.source, "url": a.url, "created_at": iso(a.created_at)}


def article_from_row(r: dict) -> Article:
    return Article(
        id=r["id"], headline=r["headline"], symbols=tuple(json.loads(r["symbols"])),
        created_at=parse_ts(r["created_at"]), provider=r["provider"], summary=r["summary"] or "",
        source=r["source"] or "", url=r["url"] or "",
    )


def store_articles(rt: Runtime, articles: list[Article]) -> tuple[int, int]:
    """Insert the articles not stored yet; a syndicated copy (same headline and symbols within
    news.dedup_minutes of a stored or earlier one, any provider) is stored as status 'duplicate' with
    duplicate_of = the first copy, so it is never scored. Returns (new, of which duplicates)."""
    now, st = rt.now(), rt.store
    window = timedelta(minutes=rt.settings.news.dedup_minutes)
    with st.tx():
        fresh: dict[str, Article] = {}
        for a in articles:
            fresh.setdefault(a.id, a)
        for i in range(0, len(articles), 500):
            ids = [a.id for a in articles[i:i + 500]]
            for r in st.all(f"SELECT id FROM articles WHERE id IN ({','.join('?' * len(ids))})", ids):
                fresh.pop(r["id"], None)
        copies: dict[str, str] = {}
        if fresh and window:
            times = [a.created_at for a in fresh.values()]
            stored = st.all("SELECT id, headline, symbols, created_at FROM articles WHERE duplicate_of IS NULL "
                            "AND created_at BETWEEN ? AND ?", [iso(min(times) - window), iso(max(times) + window)])
            copies = find_syndicated(fresh.values(), [
                (r["id"], story_key(r["headline"], json.loads(r["symbols"])), parse_ts(r["created_at"]))
                for r in stored], window)
        new = st.insert_ignore("articles", [article_row(a, now, copies.get(a.id)) for a in fresh.values()])
    return new, len(copies)


def relevant(articles: list[Article], symbols: set[str]) -> list[Article]:
    """Keep only the watched symbols of each article, and only articles that name one."""
    out = []
    for a in articles:
        keep = tuple(s for s in a.symbols if s in symbols)
        if keep:
            out.append(a if keep == a.symbols else replace(a, symbols=keep))
    return out


def watched(rt: Runtime) -> set[str]:
    return set(rt.settings.news.symbols or rt.settings.universe.symbols)


def fetch_news(rt: Runtime) -> dict:
    provider = rt.news_provider()
    articles = relevant(provider.fetch(rt.store), watched(rt))
    with rt.store.tx():
        new, duplicates = store_articles(rt, articles)
        provider.commit(rt.store)
    app_log.info("fetched %d articles (%d new, %d of them syndicated copies)", len(articles), new, duplicates,
                 extra={"step": "fetch-news"})
    return {"fetched": len(articles), "new": new, "duplicates": duplicates,
            "articles": [article_json(a) for a in articles]}


# --- scoring ---------------------------------------------------------------------------------
def score(rt: Runtime, limit: int = 1000) -> dict:
    rows = rt.store.all(
        "SELECT * FROM articles WHERE status = 'pending' ORDER BY created_at, id LIMIT ?", [limit]
    )
    if not rows:
        return {"articles": 0, "scores": 0, "by_sentiment": {}}
    articles = [article_from_row(r) for r in rows]
    scores = rt.scorer.score(articles)
    created = {a.id: iso(a.created_at) for a in articles}
    now = iso(rt.now())
    score_rows = [
        {"article_id": s.article_id, "symbol": s.symbol, "scorer": s.scorer, "sentiment": s.sentiment,
         "conviction": int(s.conviction), "reason": s.reason, "scored_at": now,
         "article_created_at": created[s.article_id]}
        for s in scores
    ]
    # a scorer may leave articles pending: failed (attempt counted, error kept) or deferred (e.g. budget)
    failed, deferred = getattr(rt.scorer, "failed", {}), getattr(rt.scorer, "deferred", {})
    done = [a.id for a in articles if a.id not in failed and a.id not in deferred]
    with rt.store.tx():
        new = rt.store.insert_ignore("scores", score_rows)
        rt.store.db.execute(
            f"UPDATE articles SET status = 'scored', attempts = attempts + 1, error = NULL WHERE id IN "
            f"({','.join('?' * len(done))})",
            done,
        )
        for aid, err in failed.items():
            rt.store.execute("UPDATE articles SET attempts = attempts + 1, error = ? WHERE id = ?", [err, aid])
        for aid, why in deferred.items():
            rt.store.execute("UPDATE articles SET error = ? WHERE id = ?", [why, aid])
    if failed or deferred:
        app_log.warning("%d articles left pending (%d failed, %d deferred)", len(failed) + len(deferred),
                        len(failed), len(deferred), extra={"step": "score"})
    by_id = {a.id: a for a in articles}
    by_sentiment: dict[str, int] = {}
    for s in scores:
        by_sentiment[s.sentiment] = by_sentiment.get(s.sentiment, 0) + 1
        decisions_log.info(
            "scored", extra={"article_id": s.article_id, "headline": by_id[s.article_id].headline,
                             "symbol": s.symbol, "scorer": s.scorer, "sentiment": s.sentiment,
                             "conviction": s.conviction, "reason": s.reason},
        )
    return {"articles": len(articles), "scores": new, "by_sentiment": by_sentiment,
            "failed": len(failed), "deferred": len(deferred), "rows": score_rows}


# --- portfolio state -------------------------------------------------------------------------
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
    """Value positions at now, record an equity point, and fire loss-limit halts."""
    st = rt.store
    cash = st.cash(rt.settings.capital)
    values = []
    with st.tx():
        for p in st.positions():
            price = rt.price(p["symbol"])
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
    peak = st.scalar("SELECT MAX(equity) FROM equity WHERE ts >= ?", [since])
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


# --- signals ---------------------------------------------------------------------------------
def signal(rt: Runtime) -> dict:
    """Turn every score not yet considered into an entry signal or a recorded skip."""
    s = rt.settings
    st = rt.store
    rows = st.all(
        "SELECT sc.* FROM scores sc LEFT JOIN signals sg ON sg.id = 'sentiment:' || sc.article_id || ':' || sc.symbol "
        "WHERE sg.id IS NULL AND sc.scorer = ? ORDER BY sc.article_created_at, sc.article_id, sc.symbol",
        [rt.scorer.name],
    )
    now = rt.now()
    held = {p["symbol"] for p in st.positions()}
    pending = {r["symbol"] for r in st.all(
        "SELECT symbol FROM signals WHERE side = 'buy' AND status IN ('new', 'sized') "
        "UNION SELECT symbol FROM orders WHERE intent = 'entry' AND status NOT IN "
        "('filled', 'rejected', 'canceled', 'expired')")}
    max_age = timedelta(minutes=s.signals.max_age_minutes)
    made, skipped = [], 0
    for r in rows:
        slots = s.risk.max_open_positions - len(held | pending)
        d = decide_entry(
            sentiment=r["sentiment"], conviction=r["conviction"], min_conviction=s.sentiment.min_conviction,
            held=r["symbol"] in held, pending=r["symbol"] in pending, open_slots=slots,
            tradable=rt.tradable(r["symbol"], now), stale=now - parse_ts(r["article_created_at"]) > max_age,
        )
        sid = f"sentiment:{r['article_id']}:{r['symbol']}"
        row = {
            "id": sid, "symbol": r["symbol"], "side": "buy", "source": "sentiment",
            "strength": r["conviction"] / 100.0, "reason": r["reason"], "ref": r["article_id"],
            "asset_class": rt.asset_class(r["symbol"]), "created_at": iso(now), "status": d.status,
            "status_reason": d.reason, "size_method": None, "notional": None, "updated_at": iso(now),
        }
        with st.tx():
            st.insert_ignore("signals", [row])
        if d.status == "new":
            pending.add(r["symbol"])
            made.append(row)
        else:
            skipped += 1
    return {"considered": len(rows), "signals": len(made), "skipped": skipped, "rows": made}


# --- sizing and the gate ---------------------------------------------------------------------
def record_decision(rt: Runtime, signal_id: str, stage: str, requested: float, d: risk.GateDecision) -> None:
    rt.store.db["risk_decisions"].insert({
        "signal_id": signal_id, "stage": stage, "decision": d.decision, "rule": d.rule, "detail": d.detail,
        "requested": requested, "approved": d.approved, "decided_at": iso(rt.now()),
    })
    decisions_log.info("gate", extra={"signal_id": signal_id, "stage": stage, "decision": d.decision,
                                      "rule": d.rule, "detail": d.detail, "requested": requested,
                                      "approved": d.approved})


def recent_bars(rt: Runtime, symbol: str, n: int) -> tuple[str, list[dict]]:
    """The symbol's last n bars: stored bars of its most recent timeframe, else (sim) the sim market's."""
    latest = rt.store.one("SELECT timeframe FROM bars WHERE symbol = ? ORDER BY ts DESC LIMIT 1", [symbol])
    if latest:
        rows = rt.store.all("SELECT * FROM (SELECT * FROM bars WHERE symbol = ? AND timeframe = ? "
                            "ORDER BY ts DESC LIMIT ?) ORDER BY ts", [symbol, latest["timeframe"], n])
        return latest["timeframe"], rows
    tf = f"{rt.settings.sim.step_minutes}m"
    if rt.mode != "sim" or symbol not in rt.settings.universe.symbols:
        return tf, []
    step = rt.sim_step()
    bars = [b for b in rt.world.bars(max(step - 3 * n, 1), step) if b["symbol"] == symbol]
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


# --- orders ----------------------------------------------------------------------------------
def client_order_id(signal_id: str) -> str:
    """Deterministic: the same signal can only ever make the same order id (<= 128 chars)."""
    return "tkn-" + hashlib.sha256(signal_id.encode()).hexdigest()[:24]


def apply_update(rt: Runtime, upd: OrderUpdate) -> dict:
    """Book an order update: order status, new fills, positions, closed trades. Idempotent."""
    st = rt.store
    order = st.one("SELECT * FROM orders WHERE client_order_id = ?", [upd.client_order_id])
    closed = None
    with st.tx():
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
                st.db["positions"].insert({
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
        with rt.store.tx():
            rt.store.execute("UPDATE orders SET status = 'submitting', submitted_at = ? WHERE client_order_id = ?",
                             [iso(rt.now()), order["client_order_id"]])
        upd = rt.broker.submit(req)
    return apply_update(rt, upd)


def create_order(rt: Runtime, *, signal_id: str, symbol: str, side: str, intent: str, reason: str,
                 notional: float | None = None, qty: float | None = None) -> dict | None:
    """Record the order for a signal (once: the signal id is unique) and mark the signal ordered."""
    coid = client_order_id(signal_id)
    with rt.store.tx():
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


# --- exits -----------------------------------------------------------------------------------
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
