"""The live loop: the strategies' step lists and one tick of the chain, shared by `run` and the
backtests (which replay history through this same tick)."""

from __future__ import annotations

import threading

from tokenomics.core.errors import UsageProblem
from tokenomics.trading import account, exits, news, orders, signals, sizing

STEPS = [
    ("fetch-news", news.fetch_news),
    ("score", news.score),
    ("signal", signals.signal),
    ("size", sizing.size),
    ("trade", orders.trade),
    ("check-exits", exits.check_exits),
]


STRATEGIES = ("sentiment", "model")


def steps_for(rt, strategy: str, model: str | None = None) -> list:
    """The chain of a strategy. sentiment: the news chain above. model: a trained price model's
    predictions on the latest closed bars (`signal --source model`; default ml.model, which must
    exist: exit 2 before the first tick), then the same size, trade and check-exits steps."""
    if strategy == "sentiment":
        return STEPS
    if strategy != "model":
        raise UsageProblem(f"--strategy must be one of {', '.join(STRATEGIES)} (got {strategy!r})")
    from tokenomics.research import ml

    name = model or rt.settings.ml.model
    ml.model_path(rt.settings.ml.models_dir, name)
    return [("signal", lambda r: ml.model_signals(r, name)),
            *(s for s in STEPS if s[0] in ("size", "trade", "check-exits"))]


def _counts(out: dict) -> dict:
    return {k: v for k, v in out.items() if not isinstance(v, (list, dict))}


# steps that may wait while their provider backs off; reconcile, check-exits and mark-to-market never do
OPTIONAL = ("fetch-news", "score", "trade")


def _step(rt, name: str, fn, health, counts_into: dict | None = None):
    """Run one step, recorded in runs. In paper/live a failure is isolated: a transient provider error
    is logged, recorded (the step's run row 'failed', the provider's health) and the tick goes on (None
    is returned); a permanent one (a refused key, bad config) stops the loop. In sim an error is a bug
    and propagates."""
    from tokenomics.logs import app_log
    from tokenomics.trading import faults

    if rt.mode == "sim":
        with rt.store.run(name, rt.mode) as counts:
            out = fn(rt)
            counts.update(_counts(out) if isinstance(out, dict) else {})
        return out
    provider = faults.step_provider(rt, name)
    if provider and name in OPTIONAL and health.should_skip(provider):
        rt.store.record_skipped(name, rt.mode, f"{provider} is backing off after repeated failures "
                                "or asked us to wait (Retry-After)")
        return None
    try:
        with rt.store.run(name, rt.mode) as counts:
            try:
                out = fn(rt)
            except Exception as exc:
                counts["provider"] = faults.provider_of(rt, name, exc)
                raise
            counts.update(_counts(out) if isinstance(out, dict) else {})
    except Exception as exc:
        if faults.is_permanent(exc):
            raise faults.permanent_error(rt, name, exc) from None
        blamed = faults.provider_of(rt, name, exc)
        wait, until = health.failed(blamed, exc)
        app_log.warning("step %s failed (%s): %s; the loop goes on%s%s", name, blamed, exc,
                        f", {blamed} waits {wait} tick(s)" if wait else "",
                        f", {blamed} asked for no request before {until}" if until else "",
                        extra={"step": name, "provider": blamed, "error": str(exc)[:300]})
        return None
    if provider:
        health.ok(provider)
    return out


def mark(rt) -> dict:
    """mark_to_market for run's start and end: in paper/live a transient fault leaves the equity
    unknown (None) instead of ending the run; a refused key stops it naming the provider."""
    if rt.mode == "sim":
        return account.mark_to_market(rt)
    from tokenomics.trading.faults import Health

    return _step(rt, "mark-to-market", account.mark_to_market, Health(rt)) or {"equity": None}


def tick(rt, n: int, stop: threading.Event, steps: list | None = None) -> dict:
    """One pass of the chain (`steps`, default the sentiment chain); each step is recorded in runs and
    committed before the next; the whole tick acts at the step its advance wrote. In paper/live each step is isolated (see _step): whatever fails, the
    broker's clock is read again, and check-exits and mark-to-market run on every tick."""
    from tokenomics.trading.faults import Health

    health = Health(rt)
    rt.in_tick = True  # its steps leave the marking to its end (one mark per tick)
    rt.legs_seen.clear()  # each resting bracket leg is looked up once per tick (orders.resume_unfinished)
    try:
        if rt.mode == "sim":
            rt.advance(1)
        else:
            rt.refresh_clock()
        row: dict = {"tick": n, "now": rt.now().isoformat()}
        if rt.mode != "sim":  # adopt what happened at the broker (fills, closes) before deciding anything
            from tokenomics.trading.reconcile import reconcile

            out = _step(rt, "reconcile", reconcile, health)
            if out is not None:
                row["differences"] = out["differences"]
        chain = steps or STEPS
        for name, step in chain:
            if stop.is_set():
                row["interrupted_before"] = name
                break
            out = _step(rt, name, step, health)
            if out is None:
                row.setdefault("failed", []).append(name)
                continue
            if name == "fetch-news":
                row["articles"] = out["new"]
            elif name == "score":
                row["scores"] = out["scores"]
                row["by_sentiment"] = out["by_sentiment"]
            elif name == "signal":
                row["signals"] = out["signals"]
            elif name == "trade":
                row["opened"] = [{"symbol": r["symbol"], "qty": r["qty"], "price": r["price"]}
                                 for r in out["rows"] if r["status"] == "filled" and r["intent"] == "entry"]
            elif name == "check-exits":
                row["closed"] = [{"symbol": c["symbol"], "reason": c["exit_reason"], "pnl": c["pnl"]}
                                 for c in (r["closed"] for r in out["rows"]) if c]
        if rt.mode == "sim":
            row.update(account.mark_to_market(rt))
        else:
            marks = _step(rt, "mark-to-market", account.mark_to_market, health)
            row.update(marks or {})  # no equity when the marks could not be taken this tick
    finally:
        rt.end_tick()
    rt.store.checkpoint()  # PASSIVE: the WAL stays about one tick long
    return row


def progress_line(row: dict) -> str:
    parts = [f"tick {row['tick']:>4}", row["now"][:16].replace("T", " "),
             f"news {row.get('articles', 0)}", f"signals {row.get('signals', 0)}"]
    for o in row.get("opened", []):
        parts.append(f"BUY {o['symbol']} {o['qty']:.6g}@{o['price']:.2f}")
    for c in row.get("closed", []):
        parts.append(f"SELL {c['symbol']} {c['reason']} {c['pnl']:+.2f}")
    if row.get("failed"):
        parts.append("FAILED " + ",".join(row["failed"]))
    parts.append(f"equity {row['equity']:,.2f}" if row.get("equity") is not None else "equity ?")
    return "  ".join(parts)
