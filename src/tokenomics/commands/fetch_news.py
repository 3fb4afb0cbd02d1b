import typer

from tokenomics.output import emit
from tokenomics.trading import news

app = typer.Typer()


@app.command()
def fetch_news(
    ctx: typer.Context,
    advance: int = typer.Option(0, "--advance", min=0, help="Sim mode: move the sim clock this many steps first."),
    since: str = typer.Option(None, "--since", help="Backfill past articles from this moment (ISO, UTC): "
                              "Alpaca's historical news or the news.file's articles; resumable."),
    until: str = typer.Option(None, "--until", help="End of the backfill (default: now)."),
) -> None:
    """Fetch new articles into the store (natural key: the article id, so re-runs add nothing);
    with --since/--until, backfill past ones."""
    rt = ctx.obj
    if since or until:
        from tokenomics.core.errors import UsageProblem
        from tokenomics.store import parse_ts, utcnow

        def when(text: str, opt: str):
            try:
                dt = parse_ts(text)
            except ValueError:
                raise UsageProblem(f"{opt}: not an ISO date or time: {text!r}") from None
            return dt if dt.tzinfo else dt.replace(tzinfo=utcnow().tzinfo)

        if not since:
            raise UsageProblem("--until needs --since")
        if advance:
            raise UsageProblem("--advance and --since do not go together")
        with rt.store.run("fetch-news", rt.mode) as counts:
            out = news.backfill(rt, when(since, "--since"), when(until, "--until") if until else utcnow())
            counts.update(fetched=out["fetched"], new=out["new"], duplicates=out["duplicates"])
        emit(rt, out, title="fetch-news backfill")
        return
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
