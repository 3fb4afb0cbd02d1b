"""backtest: a strategy over the sim history, through the same code as `run`; sweeps over a grid."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenomics.output import check_writable, emit

app = typer.Typer()


def _check_grid(rt, combos: list[dict]) -> None:
    """Every combination's values, checked before any run (a worker must not be the one to find out)."""
    from tokenomics.core.errors import UsageProblem
    from tokenomics.research import backtest as replay

    for combo in combos:
        for key in ("fast", "slow"):
            value = combo.get(key)
            if key in combo and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageProblem(f"--grid {key}={value}: a whole number of bars >= 1", hint="--grid fast=5,10")
        for key in ("symbol", "model"):
            if key in combo and not isinstance(combo[key], str):
                raise UsageProblem(f"--grid {key}={combo[key]}: a name", hint=f"--grid {key}=...")
        replay.apply_overrides(rt.settings, {k: v for k, v in combo.items() if "." in k})


@app.command()
def backtest(
    ctx: typer.Context,
    strategy: str = typer.Option("sentiment", "--strategy", help="sentiment (the news chain, replayed through "
                                 "run's own steps), sma (the SMA crossover reference) or model (ml.model's "
                                 "predictions, through run --strategy model's steps; --grid model=NAME)."),
    start: str = typer.Option(None, "--start", help="First moment of the window (ISO date/time, UTC)."),
    end: str = typer.Option(None, "--end", help="Last moment (default: the sim clock's now)."),
    steps: int = typer.Option(None, "--steps", min=2, help="Window length in sim steps when --start is "
                              "not given (default: backtest.steps)."),
    grid: list[str] = typer.Option(None, "--grid", help="param=v1,v2 (repeatable): run every combination; "
                                   "fast/slow/symbol for sma, or any dotted setting such as sentiment.min_conviction."),
    workers: int = typer.Option(None, "--workers", min=0, help="Processes for --grid (default: backtest.workers; "
                                "0 = one per CPU)."),
    report: Path = typer.Option(None, "--report", help="Write an offline HTML page with equity and drawdown "
                                "charts (single runs)."),
) -> None:
    """Backtest a strategy on the sim history: trades, equity curve and metrics (return, CAGR, volatility,
    Sharpe, Sortino, max drawdown, win rate, profit factor, exposure, turnover, fees), saved in the
    store's backtests table and printed as JSON."""
    from tokenomics.core.errors import UsageProblem
    from tokenomics.research import backtest as replay
    from tokenomics.research import bars as bars_mod

    rt = ctx.obj
    replay.check_strategy(strategy)
    combos = replay.grid_combinations(grid or [])
    _check_grid(rt, combos)
    if report:
        check_writable(report, "--report")  # before the run, not after it
    w = replay.window(rt, start, end, steps)
    if len(combos) > 1:
        if report:
            raise UsageProblem("--report draws one run; drop --grid or --report")
        from tokenomics.executors import LocalProcessExecutor

        bars_mod.ensure_sim_bars(rt, w.first + 1, w.last)  # once, before the workers read them
        jobs = [{"config": rt.opts.config, "db": rt.db_path, "mode": rt.opts.mode, "strategy": strategy,
                 "window": (w.first, w.last), "params": c} for c in combos]
        n = workers if workers is not None else rt.settings.backtest.workers
        rows = LocalProcessExecutor(n).map(replay.grid_job, jobs)
        emit(rt, {"strategy": strategy, "start": rt.world.time_of(w.first).isoformat(),
                  "end": rt.world.time_of(w.last).isoformat(), "combinations": len(rows), "rows": rows},
             title="backtest grid")
        return
    with rt.store.run("backtest", rt.mode) as counts:
        out = replay.finite(replay.run_backtest(rt, strategy, w, combos[0] if combos else {}))
        out["id"] = replay.save(rt, out)
        counts.update(id=out["id"], trades=len(out["trades"]))
    if report:
        from tokenomics.research.html_report import render

        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render(out), encoding="utf-8")
        out["report"] = str(report)
    doc = {k: v for k, v in out.items() if k not in ("signals", "orders")}
    emit(rt, {"id": doc.pop("id"), **doc}, title=f"backtest {strategy}", rows_key="trades")
