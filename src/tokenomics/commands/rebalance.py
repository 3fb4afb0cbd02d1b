from pathlib import Path

import typer

from tokenomics.commands import symbol_list
from tokenomics.core.errors import UsageProblem
from tokenomics.output import check_writable, emit

app = typer.Typer()

@app.command()
def rebalance(
    ctx: typer.Context,
    method: str = typer.Option("hrp", "--method", help="hrp | max-sharpe | min-variance | target-return | "
                               "target-risk | equal | inverse-vol."),
    symbol: list[str] = typer.Option(None, "--symbol", "-s", help="Target symbol(s), repeatable or "
                                     "comma-separated (default: the universe). Held symbols outside them are sold."),
    symbols: str = typer.Option(None, "--symbols", hidden=True, help="The old spelling of --symbol A,B."),
    lookback: int = typer.Option(500, "--lookback", min=3, help="Bars of price history per symbol "
                                 "(stored bars), or sim steps."),
    min_weight: float = typer.Option(0.0, "--min-weight", help="Lowest weight of any target symbol (0..1)."),
    max_weight: float = typer.Option(1.0, "--max-weight", help="Highest weight of any target symbol (0..1)."),
    min_trade_usd: float = typer.Option(10.0, "--min-trade-usd", min=0, help="Skip trades smaller than this."),
    band: float = typer.Option(0.01, "--band", min=0, help="No-trade band: leave a symbol whose weight is "
                               "within this of its target (0.01 = 1 percentage point)."),
    target: float = typer.Option(None, "--target", help="Annual target for target-return (return, e.g. 0.15) "
                                 "or target-risk (volatility, e.g. 0.2)."),
    risk_free: float = typer.Option(0.0, "--risk-free", help="Annual risk-free rate for max-sharpe."),
    linkage: str = typer.Option("single", "--linkage", help="HRP linkage: single (classic) | ward | average | "
                                "complete."),
    frontier: int = typer.Option(0, "--frontier", min=0, help="Also compute this many efficient-frontier points."),
    plot: Path = typer.Option(None, "--plot", help="Write a PNG of current vs target weights here."),
    execute: bool = typer.Option(False, "--execute", help="Send the orders (default: plan only)."),
) -> None:
    """Target weights (HRP, mean-variance, equal, inverse volatility), the trades that move the account
    there, their estimated fees and slippage, and a drift score. The current allocation is the paper
    account in sim mode; in paper/live mode the broker's own positions and cash (Alpaca), or balances
    (ccxt: each pair's base currency at its ticker, the quote currency as cash); holdings outside the
    universe are listed under account.unmanaged and never traded. Plan only unless --execute,
    which sends the orders through the trading lock, the risk gate and the idempotent order path:
    the same plan (same target weights, same day) never sends an order twice."""
    from tokenomics.adapters import optimizer
    from tokenomics.core import rebalance as rb
    from tokenomics.trading import account
    from tokenomics.trading import rebalance as rebalancer

    rt = ctx.obj
    if method not in optimizer.METHODS:
        raise UsageProblem(f"--method must be one of {', '.join(optimizer.METHODS)} (got {method!r})")
    if linkage not in optimizer.LINKAGES:
        raise UsageProblem(f"--linkage must be one of {', '.join(optimizer.LINKAGES)} (got {linkage!r})")
    exchange = rt.broker.name == "ccxt"  # an exchange account holds the crypto pairs only
    universe = rt.settings.universe.crypto if exchange else rt.settings.universe.symbols
    chosen = symbol_list(symbol, symbols) or list(universe)
    unknown = [s for s in chosen if s not in universe]
    if unknown or len(set(chosen)) != len(chosen) or not chosen:
        raise UsageProblem(f"--symbol must be distinct symbols of the universe ({', '.join(universe)}"
                           f"{'; broker ccxt trades the crypto pairs only' if exchange else ''}); "
                           f"not known: {', '.join(unknown) or '-'}")
    try:
        rb.check_bounds(len(chosen), min_weight, max_weight)
    except ValueError as exc:
        raise UsageProblem(f"weight bounds: {exc}") from None
    if method in ("target-return", "target-risk") and target is None:
        raise UsageProblem(f"--method {method} needs --target (annual, e.g. 0.15 for 15%)")
    if plot is not None:
        check_writable(plot, "--plot")  # before the optimisation, not after it
    with rt.store.run("rebalance", rt.mode) as counts:
        prices, origin = rebalancer.price_history(rt, chosen, lookback)
        returns = optimizer.returns_from_prices(prices)
        weights = optimizer.target_weights(method, returns, min_weight=min_weight, max_weight=max_weight,
                                           linkage=linkage, target=target, risk_free=risk_free)
        curve = optimizer.efficient_frontier(returns, frontier, min_weight=min_weight, max_weight=max_weight,
                                             risk_free=risk_free) if frontier else []
        (day, _), _ = account.period_keys(rt, rt.now())
        pid = rb.plan_id(weights, day)
        if execute:
            plan, orders, alloc = rebalancer.execute(rt, weights, pid, min_trade_usd, band)
        else:
            alloc = rebalancer.current_allocation(rt)
            plan, orders = rebalancer.make_plan(rt, weights, min_trade_usd, band, alloc), []
        counts.update(method=method, planned=len(plan.planned), orders=sum(1 for o in orders if "client_order_id" in o))
    cap = rt.settings.risk.max_position_pct / 100.0
    warnings = [f"target weight of {s} ({w:.1%}) is above risk.max_position_pct ({cap:.0%}): the gate caps the buy"
                for s, w in weights.items() if w > cap + 1e-9]
    warnings += rebalancer.account_warnings(rt, alloc)
    current = {**{s: round(w, 6) for s, w in plan.current.items()}, "cash": round(plan.cash / plan.equity, 6)}
    doc = {
        "method": method, "plan_id": pid, "executed": execute, "now": rt.now().isoformat(), "prices": origin,
        "observations": len(returns), "equity": plan.equity, "cash": plan.cash, "drift": round(plan.drift, 6),
        "account": alloc.as_dict(), "current_weights": current,
        "target_weights": {s: round(w, 8) for s, w in weights.items()},
        "after_weights": {s: round(w, 6) for s, w in plan.after().items()},
        "trades": [t.as_dict() for t in plan.trades],
        "costs": {"turnover": round(plan.turnover, 2), "fees": round(plan.fees, 2),
                  "slippage": round(plan.slippage, 2), "total": round(plan.fees + plan.slippage, 2)},
        "orders": orders, "warnings": warnings,
    }
    if curve:
        doc["frontier"] = curve
    if plot is not None:
        doc["plot"] = str(rebalancer.plot(plot, current, weights, curve, f"{method}: current vs target"))
    emit(rt, doc, title="rebalance", rows_key="trades",
         columns=["symbol", "side", "current_weight", "target_weight", "notional", "fee", "slippage", "status",
                  "reason"])
