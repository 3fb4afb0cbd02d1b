import sys

import typer

from tokenomics.output import emit
from tokenomics.trading import explain as explainer

app = typer.Typer()


@app.command()
def explain(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="A client_order_id, a signal id, or a symbol (its latest entry)."),
) -> None:
    """The chain behind a trade: article(s), score and reason, signal, size and method, every risk-gate
    decision, the order, its fills, and its exit. JSON when piped; a tree in a terminal."""
    rt = ctx.obj
    doc = explainer.explain(rt, key)
    if rt.opts.json or rt.opts.jsonl or not sys.stdout.isatty():
        emit(rt, doc, title="explain", rows_key="risk_decisions")
        return
    from rich.console import Console

    Console().print(explainer.explain_tree(doc))
