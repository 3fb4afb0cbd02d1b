"""Alpaca news: polls from a persisted cursor (the newest created_at seen), oldest first.

Alpaca indexes articles with a lag: an article can become visible after a newer one. So each fetch
asks again from `news.overlap_minutes` before the cursor and drops the ids it already stored: an
article indexed up to that long after a newer one is still fetched, and none twice (the article id
is the store's natural key). Pages of `news.page_size` articles (the request's `limit`), at most
`news.max_pages` a fetch, through alpaca-py's REST client (its timeout, rate limit and retries come
from alpaca_http.harden).

Crypto: Alpaca tags crypto news with the coin against USD (`BTCUSD`) whatever quote currency the
universe trades (BTC/USDT on a ccxt exchange), so the query asks for `BTCUSD` and an article tagged
`BTCUSD` is mapped back to every universe pair of that coin.

A body that is not the documented JSON (an HTML error page, a wrong shape) is a ProviderError
naming the provider, the HTTP status and a short reason; an item missing a field is skipped and
counted (`skipped`), not fatal.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ValidationError, field_validator

from tokenomics.adapters.alpaca_http import RateLimiter, harden, provider_error
from tokenomics.config import NewsSettings
from tokenomics.core.errors import ProviderError
from tokenomics.core.models import Article
from tokenomics.keys import Key
from tokenomics.logs import app_log
from tokenomics.store import Store, iso, parse_ts

CURSOR = "news:alpaca:created_at"
RESUME = "news:alpaca:resume"  # "exact": the last fetch stopped at max_pages; resume at the cursor itself
PROVIDER = "alpaca news"


class NewsItem(BaseModel):
    """The fields of an Alpaca news item tokenomics reads (the rest is ignored)."""

    id: int
    headline: str
    created_at: datetime
    symbols: list[str]
    summary: str | None = ""
    source: str | None = ""
    url: str | None = ""
    content: str | None = ""

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("created_at without a time zone")
        return v.astimezone(timezone.utc)


def news_symbols(symbols: list[str]) -> list[str]:
    """The universe's symbols as Alpaca news tags them: equities as they are, a crypto pair as its
    coin against USD (BTC/USDT and BTC/USD -> BTCUSD)."""
    return list(dict.fromkeys(s.split("/")[0] + "USD" if "/" in s else s for s in symbols))


def universe_symbols(tag: str, symbols: list[str]) -> list[str]:
    """An article's tag back to the universe: AAPL -> AAPL; BTCUSD (or BTC/USD) -> every pair of BTC."""
    tag = tag.strip().upper()
    if tag in symbols:
        return [tag]
    coin = tag.split("/")[0] if "/" in tag else tag[:-3] if tag.endswith("USD") else None
    return [s for s in symbols if "/" in s and s.split("/")[0] == coin] if coin else []


class AlpacaNews:
    name = "alpaca"

    def __init__(self, settings: NewsSettings, symbols: list[str], crypto: list[str], api_key: Key,
                 secret: Key, now, limiter: RateLimiter | None = None, sleep=None):
        self.s, self.symbols, self.crypto, self.now = settings, symbols, crypto, now
        self._keys = (api_key, secret)
        self.limiter = limiter or RateLimiter(settings.max_requests_per_minute)
        self.sleep = sleep
        self.newest: datetime | None = None
        self.truncated = False
        self.skipped = 0  # items of the last fetch that were not valid news items

    def client(self):
        from alpaca.data.historical.news import NewsClient

        key, secret = self._keys
        extra = {"sleep": self.sleep} if self.sleep is not None else {}
        return harden(NewsClient(key.reveal(), secret.reveal(), url_override=self.s.alpaca_url),
                      self.s.timeout_seconds, self.limiter, attempts=self.s.retries + 1, **extra)

    def start(self, store: Store) -> datetime:
        last = store.get_cursor(CURSOR)
        if not last:
            return self.now() - timedelta(minutes=self.s.lookback_minutes)
        if store.get_cursor(RESUME) == "exact":
            return parse_ts(last)
        return parse_ts(last) - timedelta(minutes=self.s.overlap_minutes)

    def _page(self, client: Any, params: dict) -> tuple[list, str | None]:
        try:
            body = client.get("/news", params)  # alpaca-py's REST GET: the documented JSON as a dict
        except Exception as exc:  # APIError, requests' errors, a non-JSON body: all mapped, none escape raw
            raise provider_error(PROVIDER, exc) from None
        if not isinstance(body, dict) or not isinstance(body.get("news"), list):
            raise ProviderError(provider=PROVIDER, status=200,
                                reason=f"unexpected body (a {type(body).__name__} without a 'news' list)")
        token = body.get("next_page_token")
        return body.get("news") or [], token if isinstance(token, str) and token else None

    def items(self, start: datetime, end: datetime | None = None) -> tuple[list[NewsItem], int]:
        """Valid news items from start (and to end), oldest first, in pages of page_size, at most max_pages
        requests; and how many items the API returned. Sets `truncated` when more pages remain."""
        params: dict[str, Any] = {
            "symbols": ",".join(news_symbols(self.symbols)), "start": iso(start).replace("+00:00", "Z"),
            "sort": "asc", "limit": self.s.page_size, "include_content": str(self.s.include_content).lower()}
        if end is not None:
            params["end"] = iso(end).replace("+00:00", "Z")
        client = self.client()
        items: list[NewsItem] = []
        returned = 0
        self.skipped, self.truncated = 0, False
        for page in range(self.s.max_pages):
            raw, token = self._page(client, params)
            returned += len(raw)
            for obj in raw:
                try:
                    items.append(NewsItem.model_validate(obj))
                except ValidationError as exc:
                    self.skipped += 1
                    app_log.warning("alpaca news: skipped an item that is not a valid article (%d errors: %s)",
                                    exc.error_count(), ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()),
                                    extra={"step": "fetch-news"})
            if token is None:
                break
            params["page_token"] = token
            self.truncated = page == self.s.max_pages - 1
        return items, returned

    def article(self, n: NewsItem) -> Article | None:
        """A news item as the universe's article (its tags mapped to the watched symbols), or None."""
        syms = tuple(dict.fromkeys(s for tag in n.symbols for s in universe_symbols(tag, self.symbols)))
        if not syms:
            return None
        summary = n.summary or ""
        if self.s.include_content and n.content:
            summary = f"{summary}\n{n.content}".strip()
        return Article(f"alpaca:{n.id}", n.headline, syms, n.created_at, provider="alpaca",
                       summary=summary, source=n.source or "", url=n.url or "")

    def fetch(self, store: Store) -> list[Article]:
        items, _returned = self.items(self.start(store))
        known = set()
        ids = [f"alpaca:{n.id}" for n in items]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            known |= {r["id"] for r in store.all(
                f"SELECT id FROM articles WHERE id IN ({','.join('?' * len(chunk))})", chunk)}
        last = store.get_cursor(CURSOR)
        self.newest = parse_ts(last) if last else None
        out, seen = [], set()
        for n in items:
            self.newest = max(self.newest or n.created_at, n.created_at)
            aid = f"alpaca:{n.id}"
            if aid in known or aid in seen:
                continue  # the overlap window asks again for what the last fetch stored
            seen.add(aid)
            art = self.article(n)
            if art is not None:
                out.append(art)
        return out

    def commit(self, store: Store) -> None:
        if self.newest is not None:
            store.set_cursor(CURSOR, iso(self.newest))
            store.set_cursor(RESUME, "exact" if self.truncated else "overlap")


def history_page(news: AlpacaNews, start: datetime, end: datetime, limit: int) -> tuple[list[Article], int]:
    """Alpaca's historical news in [start, end], oldest first (for `fetch-news --since/--until`): up to
    page_size x max_pages items (`limit` is that product), the watched symbols' articles, and how many the
    API returned (that many means there may be more). Same requests, checks and errors as fetch."""
    try:
        items, returned = news.items(start, end)
    except ProviderError as err:
        err.hint = "re-run: the backfill resumes after the last stored article"
        raise
    out = [a for a in (news.article(n) for n in items) if a is not None]
    return out, min(returned, limit) if not news.truncated else limit
