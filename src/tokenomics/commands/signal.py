import typer

from tokenomics import engine
from tokenomics.output import emit

app = typer.Typer()


@app.command()
def signal(ctx: typer.Context) -> None:
    """Turn scores not yet considered into entry signals, or record why each was skipped."""
    rt = ctx.obj
    with rt.store.run("signal", rt.mode) as counts:
        out = engine.signal(rt)
        counts.update(signals=out["signals"], skipped=out["skipped"])
    emit(rt, out, title="signal", columns=["id", "symbol", "strength", "status_reason"])
