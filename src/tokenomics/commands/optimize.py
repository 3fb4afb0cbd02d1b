"""optimize: an Optuna search over a strategy's parameters, its trials run as backtests through an executor."""

from __future__ import annotations

import typer

from tokenomics.commands import symbol_list
from tokenomics.output import emit

app = typer.Typer()


@app.command()
def optimize(
    ctx: typer.Context,
    param: list[str] = typer.Option(..., "--param", "-p", help="A parameter's range (repeatable): fast=5..50 "
                                    "(integers), exits.stop_loss_pct=1.0..5.0:log (floats, log scale), x=0..1:0.1 "
                                    "(a step), symbol=BTC/USD,ETH/USD (choices), slow=30 (fixed)."),
    strategy: str = typer.Option("sma", "--strategy", help="sma, sentiment or model (as in backtest)."),
    source: str = typer.Option(None, "--source", help="Bars to replay, as in backtest: file, ccxt, alpaca or sim "
                               "(default: bars.source unless sim, else the one non-sim source stored, else sim)."),
    timeframe: str = typer.Option(None, "--timeframe", "-t", help="Timeframe of the stored bars."),
    symbol: list[str] = typer.Option(None, "--symbol", "-s", help="Symbol(s) to replay (default: every stored one)."),
    start: str = typer.Option(None, "--start", help="First moment of the window (ISO date/time, UTC)."),
    end: str = typer.Option(None, "--end", help="Last moment (default: the last stored bar; sim: the sim clock's now)."),
    steps: int = typer.Option(None, "--steps", min=2, help="Window length in bars (sim: steps) when --start is "
                              "not given (sim default: backtest.steps)."),
    objective: str = typer.Option("sharpe", "--objective", help="Maximised over the in-sample window: sharpe, "
                                  "sortino, calmar or total_return."),
    min_trades: int = typer.Option(1, "--min-trades", min=0, help="A trial with fewer closed trades is pruned."),
    trials: int = typer.Option(50, "--trials", min=1, help="Finished trials the study should have; a re-run of "
                               "the same command resumes the study up to this count."),
    seed: int = typer.Option(0, "--seed", help="Sampler seed: the same seed gives the same trials."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe (default) or random."),
    batch: int = typer.Option(4, "--batch", min=1, help="Trials asked at once and run in parallel."),
    holdout: float = typer.Option(0.0, "--holdout", min=0.0, max=0.95, help="Share of the window, at its end, "
                                  "kept out of the search; the best trials are scored there too (e.g. 0.25)."),
    top: int = typer.Option(5, "--top", min=1, help="Best trials to show (and score on the holdout)."),
    study: str = typer.Option(None, "--study", help="Study name (default: derived from the strategy, objective, "
                              "ranges, window and seed, so the same command resumes it)."),
    storage: str = typer.Option(None, "--storage", help="Optuna storage URL (default: the store, "
                                "sqlite:///<store.path>)."),
    executor: str = typer.Option(None, "--executor", help="Where trials run: local (process pool), inline or ray "
                                 "(default: backtest.executor)."),
    address: str = typer.Option(None, "--address", help="Ray cluster for --executor ray: auto or ray://HEAD:10001 "
                                "(default: backtest.ray_address; none = a local Ray)."),
    workers: int = typer.Option(None, "--workers", min=0, help="Processes of the local pool (default: "
                                "backtest.workers; 0 = one per CPU)."),
) -> None:
    """Search a strategy's parameters with Optuna (TPE, seeded): each trial is a backtest saved like a grid
    row; the study is kept in the store and resumes; the best trials are printed with their in-sample
    figures and, with --holdout, beside their out-of-sample ones."""
    from tokenomics.executors import for_settings
    from tokenomics.research import backtest as replay
    from tokenomics.research import search

    rt = ctx.obj
    replay.check_strategy(strategy)
    space = search.parse_space(param)
    search.check_options(objective, sampler, trials, holdout, top, batch)
    w = replay.window(rt, start, end, steps, source=source, tf=timeframe, symbols=symbol_list(symbol))
    try:
        import optuna  # noqa: F401
    except ImportError:
        from tokenomics.core.errors import UsageProblem

        raise UsageProblem("optimize needs the search extra", hint='pip install "tokenomics[search]"') from None
    ex = for_settings(rt.settings, executor, address, workers)
    try:
        with rt.store.run("optimize", rt.mode) as counts:
            doc = search.search(rt, ex, strategy=strategy, w=w, space=space, objective=objective, trials=trials,
                                min_trades=min_trades, seed=seed, sampler=sampler, batch=batch, holdout=holdout,
                                top=top, study=study, storage=storage)
            counts.update(study=doc["study"], trials=doc["trials"], evaluated=doc["evaluated"])
    finally:
        ex.close()
    emit(rt, doc, title=f"optimize {strategy} ({doc['study']})", rows_key="best")
