import typer

from tokenomics.output import emit
from tokenomics.trading import orders

app = typer.Typer()


@app.command()
def trade(ctx: typer.Context) -> None:
    """Send orders for sized signals. Safe to re-run: each signal makes at most one order, and an
    unfinished order is looked up at the broker by its client_order_id before anything is resent."""
    rt = ctx.obj
    with rt.store.run("trade", rt.mode) as counts:
        out = orders.trade(rt)
        counts.update(orders=out["orders"], filled=out["filled"], rejected=out["rejected"])
    emit(rt, out, title="trade", columns=["client_order_id", "symbol", "side", "status", "qty", "price"])
