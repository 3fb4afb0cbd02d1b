import typer

from tokenomics.output import emit
from tokenomics.trading import news

app = typer.Typer()


@app.command()
def fetch_news(
    ctx: typer.Context,
    advance: int = typer.Option(0, "--advance", min=0, help="Sim mode: move the sim clock this many steps first."),
) -> None:
    """Fetch new articles into the store (natural key: the article id, so re-runs add nothing)."""
    rt = ctx.obj
    if advance:
        if rt.mode != "sim":
            from tokenomics.core.errors import UsageProblem

            raise UsageProblem("--advance only applies in sim mode")
        rt.advance(advance)
    with rt.store.run("fetch-news", rt.mode) as counts:
        out = news.fetch_news(rt)
        counts.update(fetched=out["fetched"], new=out["new"], duplicates=out["duplicates"])
    emit(rt, {"now": rt.now().isoformat(), **out}, title="fetch-news", rows_key="articles",
         columns=["id", "symbols", "headline", "created_at"])
