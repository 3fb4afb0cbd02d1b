import typer

from tokenomics.core.errors import UsageProblem
from tokenomics.output import emit
from tokenomics.trading import account, sizing

app = typer.Typer()

METHODS = ("fixed", "kelly", "vol-target", "adaptive")


@app.command()
def size(
    ctx: typer.Context,
    method: str = typer.Option(None, "--method", help="fixed | kelly | vol-target | adaptive "
                               "(default sizing.method)."),
) -> None:
    """Size new signals (fixed range, fractional Kelly, volatility target or an adaptive blend; signal
    strength scales each) and apply the risk gate, which caps every size."""
    rt = ctx.obj
    if method is not None and method not in METHODS:
        raise UsageProblem(f"--method must be one of {', '.join(METHODS)} (got {method!r})")
    with rt.store.run("size", rt.mode) as counts:
        account.mark_to_market(rt)
        out = sizing.size(rt, method)
        counts.update(sized=out["sized"], rejected=out["rejected"])
    emit(rt, out, title="size")
