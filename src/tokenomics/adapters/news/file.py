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
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise UsageProblem(f"article field 'symbols' must be a list of symbols like [\"AAPL\", \"BTC/USD\"] "
                           f"or \"AAPL,MSFT\" (got {json.dumps(obj.get('symbols'))[:80]})")
    for key in ("id", "headline", "summary", "source", "url", "provider"):
        if obj.get(key) is not None and not isinstance(obj[key], (str, int)):
            raise UsageProblem(f"article field {key!r} must be text (got {json.dumps(obj[key])[:80]})")
    raw = obj["created_at"]
    try:
        if not isinstance(raw, str):
            raise ValueError
        created = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise UsageProblem(f"article field 'created_at' must be an ISO-8601 time such as 2026-01-05T15:00:00Z "
                           f"(got {json.dumps(raw)[:80]})") from None
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


def read_jsonl(lines: Iterable[str | bytes], provider: str = "file") -> list[Article]:
    """Articles from JSON lines (text, or bytes that must be UTF-8); a bad line exits 2 naming it."""
    out = []
    where = "stdin" if provider == "stdin" else provider
    for n, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageProblem(f"{where} line {n} is not UTF-8 text (byte 0x{line[exc.start]:02x} at "
                                   f"position {exc.start})", hint="articles are JSON lines in UTF-8") from None
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageProblem(f"{where} line {n} is not JSON: {exc}") from None
        try:
            if isinstance(obj, dict) and "articles" in obj and isinstance(obj["articles"], list):
                out.extend(article_from_json(a if isinstance(a, dict) else {}, provider) for a in obj["articles"])
            elif isinstance(obj, dict):
                out.append(article_from_json(obj, provider))
            else:
                raise UsageProblem("not a JSON object")
        except UsageProblem as exc:
            raise UsageProblem(f"{where} line {n}: {exc}", hint=exc.hint) from None
    return out


class FileNews:
    name = "file"

    def __init__(self, path: Path):
        self.path = path

    def fetch(self, store: Store) -> list[Article]:
        if not self.path.exists():
            raise UsageProblem(f"news.file not found: {self.path}")
        with self.path.open("rb") as fh:
            return read_jsonl(fh)

    def commit(self, store: Store) -> None:
        """Nothing to remember: article ids make re-reading the file idempotent."""
