"""Alpaca news: polls with a persisted cursor (the newest created_at seen), oldest first.

Each fetch asks for articles from the cursor (inclusive) onward, in bounded pages, so a restart
neither skips (ascending order from the last timestamp) nor duplicates (the article id is the
store's natural key; the overlap at the cursor is dropped by id). Syndicated copies are marked
where every provider's articles are stored (news.store_articles).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tokenomics.adapters.alpaca_http import RateLimiter, canonical, harden
from tokenomics.config import NewsSettings
from tokenomics.core.errors import ProviderError
from tokenomics.core.models import Article
from tokenomics.keys import Key
from tokenomics.store import Store, iso, parse_ts

CURSOR = "news:alpaca:created_at"


class AlpacaNews:
    name = "alpaca"

    def __init__(self, settings: NewsSettings, symbols: list[str], crypto: list[str], api_key: Key,
                 secret: Key, now, limiter: RateLimiter | None = None):
        self.s, self.symbols, self.crypto, self.now = settings, symbols, crypto, now
        self._keys = (api_key, secret)
        self.limiter = limiter or RateLimiter(settings.max_requests_per_minute)
        self.newest: datetime | None = None

    def client(self):
        from alpaca.data.historical.news import NewsClient

        key, secret = self._keys
        return harden(NewsClient(key.reveal(), secret.reveal(), url_override=self.s.alpaca_url),
                      self.s.timeout_seconds, self.limiter)

    def fetch(self, store: Store) -> list[Article]:
        from alpaca.common.exceptions import APIError
        from alpaca.data.requests import NewsRequest
        from requests import RequestException

        last = store.get_cursor(CURSOR)
        start = parse_ts(last) if last else self.now() - timedelta(minutes=self.s.lookback_minutes)
        req = NewsRequest(symbols=",".join(s.replace("/", "") for s in self.symbols), start=start, sort="asc",
                          limit=self.s.page_size * self.s.max_pages, include_content=self.s.include_content)
        try:
            got = self.client().get_news(req)
        except APIError as exc:
            raise ProviderError(f"alpaca news: HTTP {exc.status_code}: {str(exc.message)[:200]}") from None
        except RequestException as exc:
            raise ProviderError(f"alpaca news: {type(exc).__name__}") from None
        items = got.data.get("news", [])
        wanted = set(self.symbols)
        out = []
        self.newest = None
        for n in items:
            created = n.created_at.astimezone(timezone.utc)
            self.newest = max(self.newest or created, created)
            syms = tuple(dict.fromkeys(s for s in (canonical(x, self.crypto) for x in n.symbols) if s in wanted))
            if not syms:
                continue
            summary = n.summary or ""
            if self.s.include_content and n.content:
                summary = f"{summary}\n{n.content}".strip()
            out.append(Article(f"alpaca:{n.id}", n.headline, syms, created, provider="alpaca",
                               summary=summary, source=n.source or "", url=n.url or ""))
        return out

    def commit(self, store: Store) -> None:
        if self.newest is not None:
            store.set_cursor(CURSOR, iso(self.newest))


def history_page(news: AlpacaNews, start: datetime, end: datetime, limit: int) -> tuple[list[Article], int]:
    """One page of Alpaca's historical news in [start, end], oldest first (for `fetch-news --since/--until`):
    the watched symbols' articles, and how many the API returned (a full page means there may be more)."""
    from alpaca.common.exceptions import APIError
    from alpaca.data.requests import NewsRequest
    from requests import RequestException

    s = news.s
    req = NewsRequest(symbols=",".join(x.replace("/", "") for x in news.symbols), start=start, end=end, sort="asc",
                      limit=limit, include_content=s.include_content)
    try:
        got = news.client().get_news(req)
    except APIError as exc:
        raise ProviderError(f"alpaca news: HTTP {exc.status_code}: {str(exc.message)[:200]}",
                            hint="re-run: the backfill resumes after the last stored article") from None
    except RequestException as exc:
        raise ProviderError(f"alpaca news: {type(exc).__name__}",
                            hint="re-run: the backfill resumes after the last stored article") from None
    items = got.data.get("news", [])
    wanted = set(news.symbols)
    out = []
    for n in items:
        syms = tuple(dict.fromkeys(x for x in (canonical(y, news.crypto) for y in n.symbols) if x in wanted))
        if not syms:
            continue
        summary = n.summary or ""
        if s.include_content and n.content:
            summary = f"{summary}\n{n.content}".strip()
        out.append(Article(f"alpaca:{n.id}", n.headline, syms, n.created_at.astimezone(timezone.utc),
                           provider="alpaca", summary=summary, source=n.source or "", url=n.url or ""))
    return out, len(items)
