import typer

from tokenomics.output import emit
from tokenomics.trading import exits

app = typer.Typer()


@app.command()
def check_exits(ctx: typer.Context) -> None:
    """Close positions that hit the stop-loss, the take-profit, the max hold or bearish news."""
    rt = ctx.obj
    with rt.store.run("check-exits", rt.mode) as counts:
        out = exits.check_exits(rt)
        counts.update(exits=out["exits"], held=out["held"])
    emit(rt, out, title="check-exits", columns=["client_order_id", "symbol", "status", "qty", "price"])
