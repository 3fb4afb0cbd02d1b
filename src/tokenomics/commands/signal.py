import typer

from tokenomics.core.errors import UsageProblem
from tokenomics.output import emit
from tokenomics.trading import signals

app = typer.Typer()


@app.command()
def signal(
    ctx: typer.Context,
    source: str = typer.Option("sentiment", "--source", help="sentiment (new scores) or model (predictions on "
                               "the latest bars)."),
    model: str = typer.Option(None, "--model", help="Model name for --source model (default: ml.model)."),
) -> None:
    """Turn scores not yet considered into entry signals, or record why each was skipped. With --source
    model: predict on each symbol's latest stored bar; a probability above ml.min_probability is a signal."""
    rt = ctx.obj
    if source not in ("sentiment", "model"):
        raise UsageProblem(f"--source must be sentiment or model (got {source!r})")
    if source == "model":
        from tokenomics.research import ml

        name = model or rt.settings.ml.model
        with rt.store.run("signal", rt.mode) as counts:
            out = ml.model_signals(rt, name)
            counts.update(source="model", model=name, signals=out["signals"], skipped=out["skipped"])
        emit(rt, out, title=f"signal (model {name})", columns=["id", "symbol", "strength", "status", "status_reason"])
        return
    with rt.store.run("signal", rt.mode) as counts:
        out = signals.signal(rt)
        counts.update(signals=out["signals"], skipped=out["skipped"])
    emit(rt, out, title="signal", columns=["id", "symbol", "strength", "status_reason"])
