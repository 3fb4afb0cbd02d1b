"""backtest: a strategy over the sim history, through the same code as `run`; sweeps over a grid."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenomics.output import emit

app = typer.Typer()


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
    executor: str = typer.Option(None, "--executor", help="Where --grid cells run: local (process pool), inline "
                                 "or ray (default: backtest.executor)."),
    address: str = typer.Option(None, "--address", help="Ray cluster for --executor ray: auto or ray://HEAD:10001 "
                                "(default: backtest.ray_address; none = a local Ray)."),
    report: Path = typer.Option(None, "--report", help="Write an offline HTML page with equity and drawdown "
                                "charts (single runs)."),
) -> None:
    """Backtest a strategy on the sim history: trades, equity curve and metrics (return, CAGR, volatility,
    Sharpe, Sortino, max drawdown, win rate, profit factor, exposure, turnover, fees), saved in the
    store's backtests table and printed as JSON."""
    from tokenomics.core.errors import UsageProblem
    from tokenomics.research import backtest as replay

    rt = ctx.obj
    replay.check_strategy(strategy)
    combos = replay.grid_combinations(grid or [])
    w = replay.window(rt, start, end, steps)
    if len(combos) > 1:
        if report:
            raise UsageProblem("--report draws one run; drop --grid or --report")
        from tokenomics.executors import for_settings
        from tokenomics.research import sweeps

        ex = for_settings(rt.settings, executor, address, workers)
        try:
            rows = sweeps.run_cells(rt, ex, strategy, w, combos)
        finally:
            ex.close()
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
