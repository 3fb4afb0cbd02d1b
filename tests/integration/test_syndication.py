"""Syndicated copies through the chain with the file news provider: stored, marked, scored and traded once."""

from __future__ import annotations

import json
from datetime import timedelta

from tokenomics.trading import news, signals
from tokenomics.store import iso

STORY = "Bitcoin surges to record high as ETF inflows soar"


def setup(rt, dedup_minutes: float = 30) -> None:
    config = rt.db_path.parent / "config"
    config.mkdir()
    (config / "settings.yaml").write_text(
        f"news: {{provider: file, file: news.jsonl, dedup_minutes: {dedup_minutes}}}\n"
        "universe: {equities: [AAPL], crypto: [BTC/USD, ETH/USD]}\n")


def write_news(rt, *items: tuple[str, str, str, list[str], float], append: bool = False) -> None:
    """(id, source, headline, symbols, minutes before now) per article."""
    now = rt.now()
    lines = [json.dumps({"id": aid, "source": src, "headline": h, "symbols": syms,
                         "created_at": iso(now - timedelta(minutes=ago))}) for aid, src, h, syms, ago in items]
    path = rt.db_path.parent / "news.jsonl"
    with path.open("a" if append else "w") as fh:
        fh.write("".join(line + "\n" for line in lines))


def chain(rt) -> tuple[dict, dict, dict]:
    return news.fetch_news(rt), news.score(rt), signals.signal(rt)


def articles(rt) -> dict[str, tuple[str, str | None]]:
    return {r["id"]: (r["status"], r["duplicate_of"]) for r in rt.store.all("SELECT * FROM articles")}


def test_a_copy_from_another_source_ten_minutes_later_is_scored_and_traded_once(rt):
    setup(rt)
    write_news(rt, ("r1", "reuters", STORY, ["BTC/USD"], 60), ("b1", "benzinga", STORY.upper() + "!", ["BTC/USD"], 50))
    fetched, scored, signalled = chain(rt)
    assert fetched["new"] == 2 and fetched["duplicates"] == 1
    assert articles(rt) == {"file:r1": ("scored", None), "file:b1": ("duplicate", "file:r1")}
    assert scored["articles"] == 1 and scored["scores"] == 1
    assert signalled["signals"] == 1 and rt.store.scalar("SELECT COUNT(*) FROM signals") == 1
    assert rt.store.scalar("SELECT ref FROM signals") == "file:r1"
    again = news.fetch_news(rt)  # the file is read again: nothing new, nothing re-marked
    assert again["new"] == 0 and again["duplicates"] == 0 and news.score(rt)["articles"] == 0


def test_a_copy_in_a_later_fetch_is_marked_against_the_stored_story(rt):
    setup(rt)
    write_news(rt, ("r1", "reuters", STORY, ["BTC/USD"], 60))
    chain(rt)
    write_news(rt, ("b1", "benzinga", STORY, ["BTC/USD"], 45), append=True)
    fetched, scored, signalled = chain(rt)
    assert fetched["new"] == 1 and fetched["duplicates"] == 1
    assert articles(rt)["file:b1"] == ("duplicate", "file:r1")
    assert scored["articles"] == 0 and signalled["considered"] == 0
    assert rt.store.scalar("SELECT COUNT(*) FROM scores") == 1


def test_outside_the_window_both_are_scored(rt):
    setup(rt)
    write_news(rt, ("r1", "reuters", STORY, ["BTC/USD"], 90), ("b1", "benzinga", STORY, ["BTC/USD"], 50))
    fetched, scored, _ = chain(rt)
    assert fetched["duplicates"] == 0 and scored["articles"] == 2 and scored["scores"] == 2
    assert {s for s, _ in articles(rt).values()} == {"scored"}


def test_different_symbols_are_different_stories(rt):
    setup(rt)
    write_news(rt, ("r1", "reuters", STORY, ["BTC/USD"], 60), ("b1", "benzinga", STORY, ["ETH/USD"], 50))
    fetched, scored, signalled = chain(rt)
    assert fetched["duplicates"] == 0 and scored["scores"] == 2
    assert {r["symbol"] for r in rt.store.all("SELECT symbol FROM signals")} == {"BTC/USD", "ETH/USD"}


def test_a_zero_window_turns_the_filter_off(rt):
    setup(rt, dedup_minutes=0)
    write_news(rt, ("r1", "reuters", STORY, ["BTC/USD"], 60), ("b1", "benzinga", STORY, ["BTC/USD"], 60))
    fetched, scored, _ = chain(rt)
    assert fetched["duplicates"] == 0 and scored["articles"] == 2
