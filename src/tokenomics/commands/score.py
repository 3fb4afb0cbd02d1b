import sys

import typer

from tokenomics.output import emit
from tokenomics.trading import news

app = typer.Typer()


@app.command()
def score(
    ctx: typer.Context,
    source: str = typer.Argument(None, help="'-' to read articles as JSON lines from stdin "
                                 "(e.g. `tokenomics fetch-news --jsonl | tokenomics score -`)."),
    limit: int = typer.Option(1000, "--limit", min=1, help="Score at most this many pending articles."),
) -> None:
    """Score pending articles: per symbol sentiment (bullish/bearish/neutral) and conviction 0-100."""
    rt = ctx.obj
    if source not in (None, "-"):
        from tokenomics.core.errors import UsageProblem

        raise UsageProblem(f"score takes '-' (stdin) or nothing, got {source!r}")
    if source == "-":  # read and check all of stdin before the store changes
        from tokenomics.adapters.news.file import read_jsonl

        articles = news.admit(rt, news.relevant(read_jsonl(sys.stdin.buffer, provider="stdin"), news.watched(rt)))
    with rt.store.run("score", rt.mode) as counts:
        if source == "-":
            counts["stdin_new"], counts["stdin_duplicates"] = news.store_articles(rt, articles)
        out = news.score(rt, limit)
        counts.update(articles=out["articles"], scores=out["scores"])
    emit(rt, out, title="score", columns=["article_id", "symbol", "sentiment", "conviction", "reason"])
