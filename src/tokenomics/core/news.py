"""Syndicated news: the same story (headline and symbols) from several sources within a short window
is one story, scored and traded once. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta

from tokenomics.core.models import Article

_NOT_WORD = re.compile(r"[\W_]+")


def normalise_headline(headline: str) -> str:
    """Case, Unicode compatibility forms, punctuation and spacing do not make a different story."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", headline).casefold()).strip()


def story_key(headline: str, symbols: Iterable[str]) -> str:
    return f"{normalise_headline(headline)}|{','.join(sorted(set(symbols)))}"


def find_syndicated(new: Iterable[Article], originals: Iterable[tuple[str, str, datetime]],
                    window: timedelta) -> dict[str, str]:
    """Which new articles repeat a story already seen: {copy id: id of the first copy}.

    `originals` are (id, story_key, created_at) of stored articles that are not copies themselves. A new
    article repeats a story when an original, or an earlier new article (by created_at, then id) that is
    not a copy, has the same key and was created within `window` of it. A zero window finds none.
    """
    if window <= timedelta(0):
        return {}
    seen: dict[str, list[tuple[datetime, str]]] = {}
    for aid, key, created in originals:
        seen.setdefault(key, []).append((created, aid))
    copies: dict[str, str] = {}
    for a in sorted(new, key=lambda a: (a.created_at, a.id)):
        key = story_key(a.headline, a.symbols)
        near = [(c, aid) for c, aid in seen.get(key, []) if abs(c - a.created_at) <= window and aid != a.id]
        if near:
            copies[a.id] = min(near)[1]
        else:
            seen.setdefault(key, []).append((a.created_at, a.id))
    return copies
