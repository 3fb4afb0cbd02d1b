"""fetch-news and score over the store: storing articles (syndicated copies marked), relevance,
and scoring pending articles with the configured scorer.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from tokenomics.core.models import Article
from tokenomics.core.news import find_syndicated, story_key, without_information
from tokenomics.logs import app_log, decisions_log
from tokenomics.runtime import Runtime
from tokenomics.store import iso, parse_ts


def article_row(a: Article, fetched_at: datetime, duplicate_of: str | None = None) -> dict:
    return {
        "id": a.id, "provider": a.provider, "headline": a.headline, "summary": a.summary,
        "symbols": json.dumps(list(a.symbols)), "source": a.source, "url": a.url,
        "created_at": iso(a.created_at), "fetched_at": iso(fetched_at),
        "status": "duplicate" if duplicate_of else "pending", "attempts": 0, "error": None,
        "duplicate_of": duplicate_of,
    }


def article_json(a: Article) -> dict:
    return {"id": a.id, "provider": a.provider, "headline": a.headline, "summary": a.summary,
            "symbols": list(a.symbols), "source": a.source, "url": a.url, "created_at": iso(a.created_at)}


def article_from_row(r: dict) -> Article:
    return Article(
        id=r["id"], headline=r["headline"], symbols=tuple(json.loads(r["symbols"])),
        created_at=parse_ts(r["created_at"]), provider=r["provider"], summary=r["summary"] or "",
        source=r["source"] or "", url=r["url"] or "",
    )


def store_articles(rt: Runtime, articles: list[Article]) -> tuple[int, int]:
    """Insert the articles not stored yet; a syndicated copy (same headline and symbols within
    news.dedup_minutes of a stored or earlier one, any provider) is stored as status 'duplicate' with
    duplicate_of = the first copy, so it is never scored. Returns (new, of which duplicates)."""
    articles = admit(rt, articles)
    now, st = rt.now(), rt.store
    window = timedelta(minutes=rt.settings.news.dedup_minutes)
    with st.tx():
        fresh: dict[str, Article] = {}
        for a in articles:
            fresh.setdefault(a.id, a)
        for i in range(0, len(articles), 500):
            ids = [a.id for a in articles[i:i + 500]]
            for r in st.all(f"SELECT id FROM articles WHERE id IN ({','.join('?' * len(ids))})", ids):
                fresh.pop(r["id"], None)
        copies: dict[str, str] = {}
        if fresh and window:
            times = [a.created_at for a in fresh.values()]
            stored = st.all("SELECT id, headline, symbols, created_at FROM articles WHERE duplicate_of IS NULL "
                            "AND created_at BETWEEN ? AND ?", [iso(min(times) - window), iso(max(times) + window)])
            copies = find_syndicated(fresh.values(), [
                (r["id"], story_key(r["headline"], json.loads(r["symbols"])), parse_ts(r["created_at"]))
                for r in stored], window)
        new = st.insert_ignore("articles", [article_row(a, now, copies.get(a.id)) for a in fresh.values()])
    return new, len(copies)


TRUNCATED = "…[truncated]"


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def admit(rt: Runtime, articles: list[Article]) -> list[Article]:
    """The gate every article passes before the store (fetch-news of any provider, `score -`): one dated
    after now (beyond news.max_future_seconds of clock skew) is rejected, as it would never go stale;
    headlines and summaries longer than news.max_headline_chars / max_summary_chars are cut with a marker."""
    s = rt.settings.news
    latest = rt.now() + timedelta(seconds=s.max_future_seconds)
    kept, future, cut = [], [], 0
    for a in articles:
        if a.created_at > latest:
            future.append(a)
            continue
        headline, summary = _cap(a.headline, s.max_headline_chars), _cap(a.summary, s.max_summary_chars)
        if (headline, summary) != (a.headline, a.summary):
            cut += 1
            a = replace(a, headline=headline, summary=summary)
        kept.append(a)
    if future:
        app_log.warning("rejected %d article(s) dated after now (%s), e.g. %s at %s", len(future), iso(rt.now()),
                        future[0].id[:80], iso(future[0].created_at), extra={"step": "news", "rejected": len(future)})
    if cut:
        app_log.warning("truncated %d article(s) longer than news.max_headline_chars (%d) / max_summary_chars (%d)",
                        cut, s.max_headline_chars, s.max_summary_chars, extra={"step": "news", "truncated": cut})
    return kept


def relevant(articles: list[Article], symbols: set[str]) -> list[Article]:
    """Keep only the watched symbols of each article, and only articles that name one."""
    out = []
    for a in articles:
        keep = tuple(s for s in a.symbols if s in symbols)
        if keep:
            out.append(a if keep == a.symbols else replace(a, symbols=keep))
    return out


def watched(rt: Runtime) -> set[str]:
    return set(rt.settings.news.symbols or rt.settings.universe.symbols)


def fetch_news(rt: Runtime) -> dict:
    provider = rt.news_provider()
    articles = admit(rt, relevant(provider.fetch(rt.store), watched(rt)))
    with rt.store.tx():
        new, duplicates = store_articles(rt, articles)
        provider.commit(rt.store)
    skipped = getattr(provider, "skipped", 0)  # provider items that were not valid articles
    app_log.info("fetched %d articles (%d new, %d of them syndicated copies, %d invalid items skipped)",
                 len(articles), new, duplicates, skipped, extra={"step": "fetch-news"})
    return {"fetched": len(articles), "new": new, "duplicates": duplicates, "skipped": skipped,
            "articles": [article_json(a) for a in articles]}


def score(rt: Runtime, limit: int = 1000) -> dict:
    rows = rt.store.all(
        "SELECT * FROM articles WHERE status = 'pending' ORDER BY created_at, id LIMIT ?", [limit]
    )
    if not rows:
        return {"articles": 0, "scores": 0, "by_sentiment": {}}
    articles = [article_from_row(r) for r in rows]
    todo, scores = without_information(articles, rt.scorer.name)
    scores = rt.scorer.score(todo) + scores  # called even when empty: it resets its failed/deferred
    created = {a.id: iso(a.created_at) for a in articles}
    now = iso(rt.now())
    score_rows = [
        {"article_id": s.article_id, "symbol": s.symbol, "scorer": s.scorer, "sentiment": s.sentiment,
         "conviction": int(s.conviction), "reason": s.reason, "scored_at": now,
         "article_created_at": created[s.article_id]}
        for s in scores
    ]
    # a scorer may leave articles pending: failed (attempt counted, error kept; after
    # sentiment.max_attempts runs the status becomes 'failed') or deferred (budget, provider down)
    failed, deferred = getattr(rt.scorer, "failed", {}), getattr(rt.scorer, "deferred", {})
    provider_error = getattr(rt.scorer, "provider_error", None)
    done = [a.id for a in articles if a.id not in failed and a.id not in deferred]
    from tokenomics.keys import redact

    max_attempts = rt.settings.sentiment.max_attempts
    with rt.store.tx():
        new = rt.store.insert_ignore("scores", score_rows)
        rt.store.execute(
            f"UPDATE articles SET status = 'scored', attempts = attempts + 1, error = NULL WHERE id IN "
            f"({','.join('?' * len(done))})",
            done,
        )
        for aid, err in failed.items():
            rt.store.execute("UPDATE articles SET attempts = attempts + 1, error = ?, status = CASE WHEN "
                             "attempts + 1 >= ? THEN 'failed' ELSE status END WHERE id = ?",
                             [redact(err)[:500], max_attempts, aid])
        for aid, why in deferred.items():
            rt.store.execute("UPDATE articles SET error = ? WHERE id = ?", [redact(why)[:500], aid])
        gave_up = [r["id"] for r in rt.store.all(
            f"SELECT id FROM articles WHERE status = 'failed' AND id IN ({','.join('?' * len(failed))})",
            list(failed))] if failed else []
    for aid in failed:
        decisions_log.info("score failed", extra={"article_id": aid, "error": failed[aid][:300],
                                                  "gave_up": aid in gave_up})
    if failed or deferred:
        app_log.warning("%d articles not scored (%d failed, %d of them for good after %d attempts; %d deferred)%s",
                        len(failed) + len(deferred), len(failed), len(gave_up), max_attempts, len(deferred),
                        f": {redact(provider_error)}" if provider_error else "", extra={"step": "score"})
    by_id = {a.id: a for a in articles}
    by_sentiment: dict[str, int] = {}
    for s in scores:
        by_sentiment[s.sentiment] = by_sentiment.get(s.sentiment, 0) + 1
        decisions_log.info(
            "scored", extra={"article_id": s.article_id, "headline": _cap(by_id[s.article_id].headline, 200),
                             "symbol": s.symbol, "scorer": s.scorer, "sentiment": s.sentiment,
                             "conviction": s.conviction, "reason": s.reason},
        )
    out = {"articles": len(articles), "scores": new, "by_sentiment": by_sentiment,
           "failed": len(failed), "gave_up": len(gave_up), "deferred": len(deferred), "rows": score_rows}
    by_provider = getattr(rt.scorer, "provider_failed", set())
    if not scores and (provider_error is not None or (failed and set(failed) <= by_provider)):
        # nothing could be scored because of the provider (down, key refused): `score` exits 1 naming it
        # the bookkeeping above is committed: the articles stay pending (or count the attempt), and the
        # error says why. `score` exits 1; the loop backs the scorer off (transient) or stops (key refused)
        from tokenomics.core.errors import ProviderError

        cause = redact(provider_error or next(iter(failed.values())))[:300]
        raise ProviderError(f"no article could be scored: {cause}", provider=rt.settings.sentiment.provider,
                            status=getattr(provider_error, "status", None),
                            transient=getattr(provider_error, "transient", True),
                            hint="the articles stay pending and are scored by a later run; check the key "
                                 "(`doctor`) or the provider's status")
    return out


def backfill(rt: Runtime, since: datetime, until: datetime) -> dict:
    """Past articles of [since, until] into the store (`fetch-news --since/--until`): Alpaca's historical
    news page by page, or the JSON-lines file's articles of the range. Idempotent (article ids) and
    resumable: each page commits with a cursor (the newest created_at stored for this range), and a
    re-run starts from it. Syndicated copies are marked as in fetch-news; the live cursor is untouched."""
    from tokenomics.core.errors import UsageProblem

    if until <= since:
        raise UsageProblem("--until must be after --since")
    provider = rt.news_provider()
    key = f"news:backfill:{provider.name}:{iso(since)}:{iso(until)}"
    done = rt.store.get_cursor(key)
    start = parse_ts(done) if done else since
    fetched = new = duplicates = pages = 0

    def keep(articles: list[Article]) -> None:
        nonlocal fetched, new, duplicates, pages
        articles = [a for a in relevant(articles, watched(rt)) if since <= a.created_at <= until]
        with rt.store.tx():
            n, d = store_articles(rt, articles)
            if articles:
                rt.store.set_cursor(key, iso(max(a.created_at for a in articles)))
        fetched, new, duplicates, pages = fetched + len(articles), new + n, duplicates + d, pages + 1

    if provider.name == "alpaca":
        from tokenomics.adapters.news.alpaca import history_page

        limit = rt.settings.news.page_size * rt.settings.news.max_pages
        while True:
            articles, returned = history_page(provider, start, until, limit)
            keep(articles)
            newest = max((a.created_at for a in articles), default=None)
            if returned < limit or newest is None or newest <= start:
                break
            start = newest  # inclusive: an overlap at the boundary is dropped by id
    elif provider.name == "file":
        keep([a for a in provider.fetch(rt.store) if a.created_at >= start])
    else:
        raise UsageProblem(f"news.provider {provider.name!r} has no history to backfill",
                           hint="set news.provider to alpaca or file (news.file: a JSON-lines file)")
    app_log.info("backfilled %d articles of %s..%s (%d new, %d syndicated copies)", fetched, iso(since),
                 iso(until), new, duplicates, extra={"step": "fetch-news"})
    return {"since": iso(since), "until": iso(until), "resumed_from": done, "pages": pages, "fetched": fetched,
            "new": new, "duplicates": duplicates}
