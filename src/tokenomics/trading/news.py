"""fetch-news and score over the store: storing articles (syndicated copies marked), relevance,
and scoring pending articles with the configured scorer.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from tokenomics.core.models import Article
from tokenomics.core.news import find_syndicated, story_key
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
    articles = relevant(provider.fetch(rt.store), watched(rt))
    with rt.store.tx():
        new, duplicates = store_articles(rt, articles)
        provider.commit(rt.store)
    app_log.info("fetched %d articles (%d new, %d of them syndicated copies)", len(articles), new, duplicates,
                 extra={"step": "fetch-news"})
    return {"fetched": len(articles), "new": new, "duplicates": duplicates,
            "articles": [article_json(a) for a in articles]}


def score(rt: Runtime, limit: int = 1000) -> dict:
    rows = rt.store.all(
        "SELECT * FROM articles WHERE status = 'pending' ORDER BY created_at, id LIMIT ?", [limit]
    )
    if not rows:
        return {"articles": 0, "scores": 0, "by_sentiment": {}}
    articles = [article_from_row(r) for r in rows]
    scores = rt.scorer.score(articles)
    created = {a.id: iso(a.created_at) for a in articles}
    now = iso(rt.now())
    score_rows = [
        {"article_id": s.article_id, "symbol": s.symbol, "scorer": s.scorer, "sentiment": s.sentiment,
         "conviction": int(s.conviction), "reason": s.reason, "scored_at": now,
         "article_created_at": created[s.article_id]}
        for s in scores
    ]
    # a scorer may leave articles pending: failed (attempt counted, error kept) or deferred (e.g. budget)
    failed, deferred = getattr(rt.scorer, "failed", {}), getattr(rt.scorer, "deferred", {})
    done = [a.id for a in articles if a.id not in failed and a.id not in deferred]
    with rt.store.tx():
        new = rt.store.insert_ignore("scores", score_rows)
        rt.store.execute(
            f"UPDATE articles SET status = 'scored', attempts = attempts + 1, error = NULL WHERE id IN "
            f"({','.join('?' * len(done))})",
            done,
        )
        for aid, err in failed.items():
            rt.store.execute("UPDATE articles SET attempts = attempts + 1, error = ? WHERE id = ?", [err, aid])
        for aid, why in deferred.items():
            rt.store.execute("UPDATE articles SET error = ? WHERE id = ?", [why, aid])
    if failed or deferred:
        app_log.warning("%d articles left pending (%d failed, %d deferred)", len(failed) + len(deferred),
                        len(failed), len(deferred), extra={"step": "score"})
    by_id = {a.id: a for a in articles}
    by_sentiment: dict[str, int] = {}
    for s in scores:
        by_sentiment[s.sentiment] = by_sentiment.get(s.sentiment, 0) + 1
        decisions_log.info(
            "scored", extra={"article_id": s.article_id, "headline": by_id[s.article_id].headline,
                             "symbol": s.symbol, "scorer": s.scorer, "sentiment": s.sentiment,
                             "conviction": s.conviction, "reason": s.reason},
        )
    return {"articles": len(articles), "scores": new, "by_sentiment": by_sentiment,
            "failed": len(failed), "deferred": len(deferred), "rows": score_rows}
