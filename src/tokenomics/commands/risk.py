from pathlib import Path

import typer

from tokenomics.commands import symbol_list
from tokenomics.logs import app_log
from tokenomics.output import check_writable, emit
from tokenomics.research import risk_report
from tokenomics.trading import account

app = typer.Typer(invoke_without_command=True)


@app.callback()
def risk(
    ctx: typer.Context,
    symbol: list[str] = typer.Option(None, "--symbol", "-s", help="Symbol(s), repeatable or comma-separated: "
                                     "metrics over their bars instead of the account's equity history."),
    symbols: str = typer.Option(None, "--symbols", hidden=True, help="The old spelling of --symbol A,B."),
    weights: str = typer.Option(None, "--weights", help="Comma-separated weights for the symbols, in their "
                                "order, summing to 1 (default: equal)."),
    timeframe: str = typer.Option(None, "--timeframe", help="Bar timeframe for --symbol (default: the sim's, 1h)."),
    source: str = typer.Option(None, "--source", help="Where --symbol's bars come from: file, ccxt (or "
                               "ccxt:<exchange>), alpaca or sim (default: the only source holding them; two "
                               "sources are never mixed)."),
    periods_per_year: float = typer.Option(None, "--periods-per-year", min=1, help="Annualisation override "
                                           "(default: the asset class's calendar, or the bars' observed spacing)."),
    lookback: int = typer.Option(1000, "--lookback", min=2, help="Bars per symbol to use."),
    window: int = typer.Option(None, "--window", help="Periods per rolling window (default risk.metrics_window)."),
    confidence: float = typer.Option(None, "--confidence", help="VaR/CVaR confidence (default risk.var_confidence)."),
    plot: Path = typer.Option(None, "--plot", help="Also write equity.png and drawdown.png into this directory."),
) -> None:
    """Risk metrics over the account's equity history (or --symbol bars): volatility, Sharpe, Sortino,
    Calmar, max drawdown and its duration, historical and parametric VaR/CVaR, rolling metrics.
    `tokenomics risk resume` lifts a latched max-drawdown halt."""
    if ctx.invoked_subcommand is not None:
        return
    rt = ctx.obj
    if plot is not None:
        check_writable(plot, "--plot", directory=True)
    doc, ts, r = risk_report.risk_report(rt, symbols=",".join(symbol_list(symbol, symbols)), weights=weights, timeframe=timeframe,
                                     lookback=lookback, window=window, confidence=confidence, source=source,
                                     periods_per_year=periods_per_year)
    if plot is not None:
        title = ",".join(doc["symbols"]) if doc["symbols"] else "account equity"
        doc["plots"] = risk_report.plot(ts, r, plot, title)
    emit(rt, doc, title="risk", rows_key="rolling",
         why_empty=f"no rolling windows: {doc['observations']} observations, fewer than --window {doc['rolling_window']}"
                   " (risk.metrics_window); --json prints the summary metrics")


@app.command("resume")
def resume(
    ctx: typer.Context,
    reason: str = typer.Option("lifted by hand", "--reason", help="Why the halt is lifted (stored with it)."),
) -> None:
    """Lift a latched max-drawdown halt; the drawdown is measured from a new peak from now on."""
    rt = ctx.obj
    with rt.store.run("risk resume", rt.mode) as counts:
        lifted = account.lift_halts(rt, reason)
        counts.update(lifted=len(lifted))
    for h in lifted:
        app_log.warning("halt lifted: %s (%s)", h["rule"], reason, extra={"rule": h["rule"], "reason": reason})
    emit(rt, {"lifted": len(lifted), "rows": lifted}, title="risk resume")
