"""No-information headlines through the real chain (file news -> score -> signal) with the offline
scorer: at most 1 % of a 300-headline template corpus reaches a signal, each blocked article is
scored neutral with the reason recorded, and genuine news still becomes a signal."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.unit.test_news_content import COMPANIES, template_corpus
from tokenomics.store import iso
from tokenomics.trading import news, signals

# a signal "reached" = passed the sentiment policy; later skips are about the book, not the news
BOOK_SKIPS = ("already holding", "an entry for the symbol is already pending", "capacity")


def setup(rt, items: list[tuple[str, str]]) -> None:
    config = rt.db_path.parent / "config"
    config.mkdir()
    tickers = ", ".join(t for _, t in COMPANIES)
    (config / "settings.yaml").write_text(
        f"news: {{provider: file, file: news.jsonl}}\nuniverse: {{equities: [{tickers}], crypto: []}}\n"
        "trading: {market_hours_only: false}\n")  # the fixture's sim clock is outside NYSE hours
    now = rt.now()
    with (rt.db_path.parent / "news.jsonl").open("w") as fh:
        for i, (headline, ticker) in enumerate(items):
            fh.write(json.dumps({"id": f"n{i}", "source": "aggregator", "headline": headline, "symbols": [ticker],
                                 "created_at": iso(now - timedelta(minutes=30, seconds=i))}) + "\n")


def reached(rt) -> list[dict]:
    return [r for r in rt.store.all("SELECT * FROM signals") if r["status"] == "new"
            or any(r["status_reason"].startswith(b) for b in BOOK_SKIPS)]


def test_at_most_one_percent_of_template_headlines_reach_a_signal(rt):
    corpus = template_corpus()
    setup(rt, corpus)
    news.fetch_news(rt)
    scored = news.score(rt)
    signals.signal(rt)
    assert scored["articles"] == len(corpus) == 300
    hits = reached(rt)
    assert len(hits) <= 0.01 * len(corpus), [(h["ref"], h["reason"]) for h in hits]
    rows = rt.store.all("SELECT a.headline, s.sentiment, s.conviction, s.reason, s.scorer FROM scores s "
                        "JOIN articles a ON a.id = s.article_id")
    quiet = [r for r in rows if r["reason"].startswith("no information")]
    assert len(quiet) >= 0.95 * len(corpus)
    assert all(r["sentiment"] == "neutral" and r["scorer"] == "offline" for r in quiet)
    why = {r["headline"]: r["reason"] for r in quiet}
    assert "quote page" in why["Apple (AAPL) shares: live quote"]
    assert "why-is-it-moving" in why["Why Amazon stock is moving today"]


def test_news_that_says_something_still_becomes_a_signal(rt):
    setup(rt, [("Apple shares surge to a record high after an earnings beat and raised guidance", "AAPL"),
               ("Why Amazon stock is moving today", "AMZN")])
    news.fetch_news(rt)
    news.score(rt)
    signals.signal(rt)
    assert [r["symbol"] for r in reached(rt)] == ["AAPL"], [(r["symbol"], r["status_reason"]) for r in rt.store.all("SELECT * FROM signals")]
