"""run: the chain on every tick: fetch-news -> score -> signal -> size -> trade -> check-exits."""

from __future__ import annotations

import signal as signals
import sys
import threading

import typer

from tokenomics.core.errors import UsageProblem
from tokenomics.output import emit, to_json
from tokenomics.trading.loop import mark, progress_line, steps_for, tick
from tokenomics.trading.monitor import Monitor

app = typer.Typer()


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
        again = "again: still finishing (the final mark and summary)" if stop.is_set() else \
            "finishing the current step"
        print(f"\nreceived {signals.Signals(signum).name} {again}", file=sys.stderr)
        stop.set()

    monitor = Monitor(rt, form="once" if once else "loop", interval=interval, strategy=strategy)
    monitor.start()  # heartbeat (`tokenomics health`) and notifications
    # the handler stays until the final mark and the summary are written: a second signal during the
    # shutdown only repeats that it is finishing
    old = {sig: signals.signal(sig, _stop) for sig in (signals.SIGINT, signals.SIGTERM)}
    failure: BaseException | None = None
    try:
        start_equity = mark(rt)["equity"]
        totals = {"strategy": strategy, "ticks": 0, "articles": 0, "opened": 0, "closed": 0, "realized_pnl": 0.0}
        start = rt.now().isoformat()
        while not stop.is_set() and (limit is None or totals["ticks"] < limit):
            since = monitor.mark()
            try:
                row = tick(rt, totals["ticks"] + 1, stop, steps)
            except BaseException as exc:
                failure = exc
                monitor.after_tick(None, since, totals["ticks"] + 1)
                raise
            monitor.after_tick(row, since, totals["ticks"] + 1)
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
        final = mark(rt)
        summary = {
            **totals, "start": start, "end": rt.now().isoformat(), "start_equity": start_equity,
            **final, "open_positions": len(rt.store.positions()), "stopped_by": "signal" if stop.is_set() else "ticks",
        }
        if not rt.opts.jsonl:
            emit(rt, summary, title="run")
    except BaseException as exc:
        failure = failure or exc
        raise
    finally:
        if stop.is_set():  # asked to stop: the process is on its way out, and Python's own shutdown
            # (which puts back the default handlers) would die of one more signal after the summary
            for sig in old:
                signals.signal(sig, signals.SIG_IGN)
        else:
            for sig, handler in old.items():
                signals.signal(sig, handler)
        monitor.stop("signal" if stop.is_set() else "ticks", failure)
