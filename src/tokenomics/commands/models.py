"""models: the trained models (ml.models_dir, then the shipped ones) with their model cards' summary."""

from __future__ import annotations

import typer

from tokenomics.output import emit

app = typer.Typer()


@app.command()
def models(ctx: typer.Context) -> None:
    """List trained models: source, symbols, timeframe, date range, rows and out-of-sample metrics."""
    from tokenomics.research import ml

    rt = ctx.obj
    rows = ml.list_models(rt.settings.ml.models_dir)
    emit(rt, {"models": len(rows), "rows": rows}, title="models",
         columns=["name", "classifier", "source", "timeframe", "first", "last", "rows", "roc_auc", "net_return"])
