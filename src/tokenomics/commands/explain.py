import sys

import typer

from tokenomics.output import emit
from tokenomics.trading import explain as explainer

app = typer.Typer()

# --jsonl: the chain's items in order, one row each, tagged with their kind
CHAIN = {"articles": "article", "scores": "score", "signal": "signal", "sizing": "sizing",
         "risk_decisions": "risk_decision", "order": "order", "fills": "fill", "position": "position",
         "trade": "trade", "exit": "exit"}


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
        emit(rt, doc, title="explain", items=CHAIN)
        return
    from rich.console import Console

    Console().print(explainer.explain_tree(doc))
