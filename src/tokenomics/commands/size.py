import typer

from tokenomics import engine
from tokenomics.output import emit

app = typer.Typer()


@app.command()
def size(ctx: typer.Context) -> None:
    """Size new signals (conviction maps onto sizing.min_usd..max_usd) and apply the risk gate."""
    rt = ctx.obj
    with rt.store.run("size", rt.mode) as counts:
        engine.mark_to_market(rt)
        out = engine.size(rt)
        counts.update(sized=out["sized"], rejected=out["rejected"])
    emit(rt, out, title="size")
