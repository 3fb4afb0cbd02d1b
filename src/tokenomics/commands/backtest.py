"""backtest: a strategy over stored bars (or the sim history), through the same code as `run`; sweeps over a grid."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenomics.commands import symbol_list
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
                raise UsageProblem(f"--grid {key}={value}: {key} must be a whole number of bars >= 1",
                                  hint="--grid fast=5,10")
        for key in ("symbol", "model"):
            if key in combo and not isinstance(combo[key], str):
                raise UsageProblem(f"--grid {key}={combo[key]}: {key} must be a name", hint=f"--grid {key}=...")
        replay.apply_overrides(rt.settings, {k: v for k, v in combo.items() if "." in k})


@app.command()
def backtest(
    ctx: typer.Context,
    strategy: str = typer.Option("sentiment", "--strategy", help="sentiment (the news chain, replayed through "
                                 "run's own steps), sma (the SMA crossover reference) or model (ml.model's "
                                 "predictions, through run --strategy model's steps; --grid model=NAME)."),
    source: str = typer.Option(None, "--source", help="Bars to replay: file, ccxt (or ccxt:<exchange>), alpaca "
                               "(stored with fetch-bars) or sim (default: bars.source unless sim, else the one "
                               "non-sim source in the store, else the sim world)."),
    timeframe: str = typer.Option(None, "--timeframe", "-t", help="Timeframe of the stored bars (default: the "
                                  "only one stored, else bars.timeframe)."),
    symbol: list[str] = typer.Option(None, "--symbol", "-s", help="Symbol(s) to replay, a portfolio with equal "
                                     "shares for sma (default: every stored symbol of the source and timeframe)."),
    start: str = typer.Option(None, "--start", help="First moment of the window (ISO date/time, UTC; default: "
                              "the first stored bar)."),
    end: str = typer.Option(None, "--end", help="Last moment (default: the last stored bar's close; sim: the sim "
                            "clock's now)."),
    steps: int = typer.Option(None, "--steps", min=2, help="Window length in bars (sim: steps) when --start is "
                              "not given (sim default: backtest.steps); fewer available are said in warnings."),
    grid: list[str] = typer.Option(None, "--grid", help="param=v1,v2 (repeatable): run every combination; "
                                   "fast/slow/symbol for sma, or any dotted setting such as sentiment.min_conviction."),
    workers: int = typer.Option(None, "--workers", min=0, help="Processes for --grid (default: backtest.workers; "
                                "0 = one per CPU)."),
    periods_per_year: float = typer.Option(None, "--periods-per-year", min=1, help="Annualisation override "
                                           "(default backtest.periods_per_year, else the asset class's calendar "
                                           "or the bars' observed spacing)."),
    curves: bool = typer.Option(False, "--curves", help="With --grid: keep each combination's equity curve "
                                "in its row and saved result (left out by default: sweeps stay fast)."),
    executor: str = typer.Option(None, "--executor", help="Where --grid cells run: local (process pool), inline "
                                 "or ray (default: backtest.executor)."),
    address: str = typer.Option(None, "--address", help="Ray cluster for --executor ray: auto or ray://HEAD:10001 "
                                "(default: backtest.ray_address; none = a local Ray)."),
    report: Path = typer.Option(None, "--report", help="Write an offline HTML page with equity and drawdown "
                                "charts (single runs)."),
) -> None:
    """Backtest a strategy on stored bars (fetch-bars) or the sim history: trades, equity curve and metrics (return, CAGR, volatility,
    Sharpe, Sortino, max drawdown, win rate, profit factor, exposure, turnover, fees), saved in the
    store's backtests table and printed as JSON."""
    from tokenomics.core.errors import UsageProblem
    from tokenomics.logs import app_log as log
    from tokenomics.research import backtest as replay

    rt = ctx.obj
    replay.check_strategy(strategy)
    combos = replay.grid_combinations(grid or [])
    _check_grid(rt, combos)
    if report:
        check_writable(report, "--report")  # before the run, not after it
    if periods_per_year:
        combos = [{**c, "backtest.periods_per_year": periods_per_year} for c in combos or [{}]]
    w = replay.window(rt, start, end, steps, source=source, tf=timeframe, symbols=symbol_list(symbol))
    if len(combos) > 1:
        if report:
            raise UsageProblem("--report draws one run; drop --grid or --report")
        from tokenomics.executors import for_settings
        from tokenomics.research import sweeps

        ex = for_settings(rt.settings, executor, address, workers)
        if strategy == "sma" and not ex.remote and getattr(ex, "workers", 1) > 1:
            # ~30 ms a combination against ~1 s to start a worker (imports): small sweeps stay here
            ex.workers = max(1, min(ex.workers, len(combos) // replay.SMA_JOBS_PER_WORKER))
        try:
            rows = sweeps.run_cells(rt, ex, strategy, w, combos, curves=curves)
        finally:
            ex.close()
            replay.release_workers()  # what an in-process sweep kept open here
        span = ({"source": w.source, "timeframe": w.timeframe, "symbols": list(w.symbols), "start": w.start,
                 "end": w.end} if w.stored else {"source": "sim", "start": rt.world.time_of(w.first).isoformat(),
                                                 "end": rt.world.time_of(w.last).isoformat()})
        doc = {"strategy": strategy, **span, "combinations": len(rows), "rows": rows}
        if w.note:
            doc["warnings"] = [w.note]
        emit(rt, doc, title="backtest grid")
        return
    with rt.store.run("backtest", rt.mode) as counts:
        out = replay.finite_result(replay.run_backtest(rt, strategy, w, combos[0] if combos else {}))
        out["id"] = replay.save(rt, out)
        counts.update(id=out["id"], trades=len(out["trades"]))
    if report:
        from tokenomics.research.html_report import render

        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render(out), encoding="utf-8")
        out["report"] = str(report)
    for note in out.get("warnings", []):
        log.warning("%s", note)
    doc = {k: v for k, v in out.items() if k not in ("signals", "orders")}
    emit(rt, {"id": doc.pop("id"), **doc}, title=f"backtest {strategy}", rows_key="trades")
