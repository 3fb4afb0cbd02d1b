"""Syndicated copies: the story key and the window rule (core.news)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tokenomics.core.models import Article
from tokenomics.core.news import find_syndicated, normalise_headline, story_key

T = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
W = timedelta(minutes=30)


def art(aid: str, headline: str, symbols: tuple[str, ...], minutes: float) -> Article:
    return Article(aid, headline, symbols, T + timedelta(minutes=minutes), provider="file")


def test_key_ignores_case_punctuation_spacing_and_symbol_order():
    assert normalise_headline("  Apple beats   estimates!") == normalise_headline("APPLE BEATS ESTIMATES")
    assert normalise_headline("Apple — beats: estimates") == "apple beats estimates"
    assert story_key("Apple beats estimates", ["MSFT", "AAPL"]) == story_key("apple beats estimates.", ["AAPL", "MSFT"])
    assert story_key("Apple beats estimates", ["AAPL"]) != story_key("Apple misses estimates", ["AAPL"])
    assert story_key("Apple beats estimates", ["AAPL"]) != story_key("Apple beats estimates", ["AAPL", "MSFT"])


def test_copies_within_the_window_point_at_the_first_copy():
    new = [art("b", "Apple beats estimates", ("AAPL",), 10), art("a", "Apple beats estimates.", ("AAPL",), 0),
           art("c", "APPLE BEATS ESTIMATES", ("AAPL",), 25)]
    assert find_syndicated(new, [], W) == {"b": "a", "c": "a"}


def test_outside_the_window_or_other_symbols_is_another_story():
    new = [art("a", "Apple beats estimates", ("AAPL",), 0), art("b", "Apple beats estimates", ("AAPL",), 31),
           art("c", "Apple beats estimates", ("MSFT",), 5)]
    assert find_syndicated(new, [], W) == {}


def test_a_stored_original_counts_and_a_zero_window_finds_nothing():
    stored = [("old", story_key("Apple beats estimates", ["AAPL"]), T - timedelta(minutes=20))]
    new = [art("late", "Apple beats estimates", ("AAPL",), 5)]
    assert find_syndicated(new, stored, W) == {"late": "old"}
    assert find_syndicated(new, stored, timedelta(0)) == {}
    # an article is never a copy of itself
    assert find_syndicated(new, [("late", story_key("Apple beats estimates", ["AAPL"]), T)], W) == {}
