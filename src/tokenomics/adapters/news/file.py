"""Articles from a JSON-lines file (one article per line), for replays and pipes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from tokenomics.core.errors import UsageProblem
from tokenomics.core.models import Article
from tokenomics.store import Store


def article_from_json(obj: dict, provider: str = "file") -> Article:
    """Build an Article from a JSON object; raise UsageProblem naming the missing field."""
    for key in ("id", "headline", "created_at"):
        if key not in obj or obj[key] in (None, ""):
            raise UsageProblem(f"article is missing the field {key!r}: {json.dumps(obj)[:200]}")
    symbols = obj.get("symbols") or []
    if isinstance(symbols, str):
        symbols = [s for s in symbols.replace(" ", "").split(",") if s]
    created = datetime.fromisoformat(str(obj["created_at"]).replace("Z", "+00:00"))
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    aid = str(obj["id"])
    return Article(
        id=aid if ":" in aid else f"{obj.get('provider', provider)}:{aid}",
        headline=str(obj["headline"]),
        symbols=tuple(str(s).upper() for s in symbols),
        created_at=created,
        provider=str(obj.get("provider", provider)),
        summary=str(obj.get("summary") or ""),
        source=str(obj.get("source") or ""),
        url=str(obj.get("url") or ""),
    )


def read_jsonl(lines: Iterable[str], provider: str = "file") -> list[Article]:
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageProblem(f"line {n} is not JSON: {exc}") from None
        if isinstance(obj, dict) and "articles" in obj and isinstance(obj["articles"], list):
            out.extend(article_from_json(a, provider) for a in obj["articles"])
        elif isinstance(obj, dict):
            out.append(article_from_json(obj, provider))
        else:
            raise UsageProblem(f"line {n} is not a JSON object")
    return out


class FileNews:
    name = "file"

    def __init__(self, path: Path):
        self.path = path

    def fetch(self, store: Store) -> list[Article]:
        if not self.path.exists():
            raise UsageProblem(f"news.file not found: {self.path}")
        with self.path.open(encoding="utf-8") as fh:
            return read_jsonl(fh)

    def commit(self, store: Store) -> None:
        """Nothing to remember: article ids make re-reading the file idempotent."""
