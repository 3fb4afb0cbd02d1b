"""Syndicated copies with wire decorations through the chain (file news -> score -> signal): the copies
are stored as duplicates of the first and only it is scored and can become a signal."""

from __future__ import annotations

from tests.integration.test_syndication import articles, chain, setup, write_news

STORY = "Bitcoin surges to record high as ETF inflows soar"


def test_decorated_copies_are_one_story(rt):
    setup(rt)
    copies = [f"UPDATE 1-{STORY}", f"BRIEF-{STORY}", f"(Reuters) - {STORY}", f"Breaking: {STORY}",
              f"{STORY} - Reuters", f"{STORY} | Nasdaq", f"{STORY} - Bloomberg", f"UPDATE 2-{STORY} | Nasdaq"]
    write_news(rt, ("r0", "reuters", STORY, ["BTC/USD"], 60),
               *[(f"c{i}", "wire", h, ["BTC/USD"], 55 - i) for i, h in enumerate(copies)])
    fetched, scored, signalled = chain(rt)
    assert fetched["new"] == 9 and fetched["duplicates"] == 8
    assert {aid: dup for aid, (_, dup) in articles(rt).items() if aid != "file:r0"} == \
        {f"file:c{i}": "file:r0" for i in range(len(copies))}
    assert scored["articles"] == 1 and signalled["considered"] == 1
