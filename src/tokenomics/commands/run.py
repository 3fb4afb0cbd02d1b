"""run: the chain on every tick: fetch-news -> score -> signal -> size -> trade -> check-exits."""

from __future__ import annotations

import signal as signals
import sys
import threading

import typer

from tokenomics import engine
from tokenomics.core.errors import UsageProblem
from tokenomics.output import emit, to_json

app = typer.Typer()

STEPS = [
    ("fetch-news", engine.fetch_news),
    ("score", engine.score),
    ("signal", engine.signal),
    ("size", engine.size),
    ("trade", engine.trade),
    ("check-exits", engine.check_exits),
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
    from tokenomics import ml

    name = model or rt.settings.ml.model
    ml.model_path(rt.settings.ml.models_dir, name)
    return [("signal", lambda r: ml.model_signals(r, name)),
            *(s for s in STEPS if s[0] in ("size", "trade", "check-exits"))]


def _counts(out: dict) -> dict:
    return {k: v for k, v in out.items() if not isinstance(v, (list, dict))}


def tick(rt, n: int, stop: threading.Event, steps: list | None = None) -> dict:
    """One pass of the chain (`steps`, default the sentiment chain); each step is recorded in runs and
    committed before the next."""
    if rt.mode == "sim":
        rt.advance(1)
    row: dict = {"tick": n, "now": rt.now().isoformat()}
    if rt.mode != "sim":  # adopt what happened at the broker (fills, closes) before deciding anything
        from tokenomics.reconcile import reconcile

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
    row.update(engine.mark_to_market(rt))
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


@app.command()
def run(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="One tick, then exit (for cron)."),
    loop: bool = typer.Option(False, "--loop", help="Tick until --ticks are done or SIGINT/SIGTERM."),
    interval: float = typer.Option(None, "--interval", min=0, help="Seconds between ticks (default: "
                                   "news.poll_seconds; sim.tick_seconds in sim mode)."),
    ticks: int = typer.Option(None, "--ticks", min=1, help="Stop after this many ticks."),
    strategy: str = typer.Option("sentiment", "--strategy", help="sentiment (news -> scores -> signals) or "
                                 "model (a trained model's predictions on the latest closed bars)."),
    model: str = typer.Option(None, "--model", help="Model name for --strategy model (default: ml.model)."),
) -> None:
    """Run the chain once (--once) or in a loop (--loop). In sim mode each tick moves the sim clock
    one step (sim.step_minutes). SIGINT/SIGTERM finish the current step, keep what was committed,
    and exit 0. Progress goes to stderr; the JSON summary (or --jsonl rows per tick) to stdout."""
    rt = ctx.obj
    if once == loop:
        raise UsageProblem("choose one of --once or --loop", hint="tokenomics run --loop --ticks 200")
    steps = steps_for(rt, strategy, model)
    s = rt.settings
    if interval is None:
        interval = s.sim.tick_seconds if rt.mode == "sim" else s.news.poll_seconds
    limit = 1 if once else ticks
    stop = threading.Event()

    def _stop(signum, _frame):
        print(f"\nreceived {signals.Signals(signum).name}: finishing the current step", file=sys.stderr)
        stop.set()

    old = {sig: signals.signal(sig, _stop) for sig in (signals.SIGINT, signals.SIGTERM)}
    start_equity = engine.mark_to_market(rt)["equity"]
    totals = {"strategy": strategy, "ticks": 0, "articles": 0, "opened": 0, "closed": 0, "realized_pnl": 0.0}
    start = rt.now().isoformat()
    try:
        while not stop.is_set() and (limit is None or totals["ticks"] < limit):
            row = tick(rt, totals["ticks"] + 1, stop, steps)
            totals["ticks"] += 1
            totals["articles"] += row.get("articles", 0)
            totals["opened"] += len(row.get("opened", []))
            totals["closed"] += len(row.get("closed", []))
            totals["realized_pnl"] = round(totals["realized_pnl"] + sum(c["pnl"] for c in row.get("closed", [])), 2)
            print(progress_line(row), file=sys.stderr, flush=True)
            if rt.opts.jsonl:
                sys.stdout.write(to_json(row) + "\n")
                sys.stdout.flush()
            if limit is not None and totals["ticks"] >= limit:
                break
            stop.wait(interval)
    finally:
        for sig, handler in old.items():
            signals.signal(sig, handler)
    final = engine.mark_to_market(rt)
    summary = {
        **totals, "start": start, "end": rt.now().isoformat(), "start_equity": start_equity,
        **final, "open_positions": len(rt.store.positions()), "stopped_by": "signal" if stop.is_set() else "ticks",
    }
    if not rt.opts.jsonl:
        emit(rt, summary, title="run")
