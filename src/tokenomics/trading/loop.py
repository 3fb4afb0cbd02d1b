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


def tick(rt, n: int, stop: threading.Event, steps: list | None = None) -> dict:
    """One pass of the chain (`steps`, default the sentiment chain); each step is recorded in runs and
    committed before the next. The whole tick acts at the step its advance wrote."""
    if rt.mode == "sim":
        rt.advance(1)
    row: dict = {"tick": n, "now": rt.now().isoformat()}
    if rt.mode != "sim":  # adopt what happened at the broker (fills, closes) before deciding anything
        from tokenomics.trading.reconcile import reconcile

        with rt.store.run("reconcile", rt.mode) as counts:
            counts["differences"] = row["differences"] = reconcile(rt)["differences"]
    for name, step in steps or STEPS:
        if stop.is_set():
            row["interrupted_before"] = name
            break
        with rt.store.run(name, rt.mode) as counts:
            out = step(rt)
            counts.update(_counts(out))
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
    row.update(account.mark_to_market(rt))
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
    parts.append(f"equity {row['equity']:,.2f}")
    return "  ".join(parts)
