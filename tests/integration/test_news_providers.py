"""Alpaca news through the real alpaca-py against the loopback fake: indexing lag, crypto tags,
page size, bodies that are not the documented JSON, Retry-After, reset connections."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.fakes import ALPACA_KEY, ALPACA_SECRET
from tokenomics.adapters.news.alpaca import AlpacaNews
from tokenomics.config import NewsSettings
from tokenomics.core.errors import ProviderError
from tokenomics.keys import Key
from tokenomics.store import iso, parse_ts

KEY, SECRET = Key("ALPACA_API_KEY", ALPACA_KEY), Key("ALPACA_SECRET_KEY", ALPACA_SECRET)
T0 = parse_ts("2026-03-02T15:00:00+00:00")


def z(t) -> str:
    return iso(t).replace("+00:00", "Z")


def provider(fake, symbols=("AAPL", "BTC/USD"), now=lambda: T0 + timedelta(minutes=30), sleeps=None, **kw):
    s = NewsSettings(provider="alpaca", alpaca_url=fake.url, **kw)
    crypto = [x for x in symbols if "/" in x]
    return AlpacaNews(s, list(symbols), crypto, KEY, SECRET, now,
                      sleep=(sleeps.append if sleeps is not None else (lambda _s: None)))


def fetch(p, store):
    from tokenomics.trading.news import article_row

    got = p.fetch(store)
    with store.tx():
        store.insert_ignore("articles", [article_row(a, T0) for a in got])
        p.commit(store)
    return got


def lost_under_lag(fake, store, overlap_minutes: float, max_lag_s: float, n: int = 35, seed: int = 1) -> int:
    """n articles 3 s apart, each visible a random 0..max_lag_s after its created_at; a poll every 5 s."""
    rng = random.Random(seed)
    for i in range(n):
        fake.add_news(1000 + i, f"Story {i}", ["AAPL"], z(T0 + timedelta(seconds=3 * i)))
        fake.news_visible_at[1000 + i] = 3 * i + rng.uniform(0, max_lag_s)
    clock = {"t": 0.0}
    p = provider(fake, now=lambda: T0 + timedelta(seconds=clock["t"]), overlap_minutes=overlap_minutes)
    got: set[str] = set()
    while clock["t"] <= 3 * n + max_lag_s + 10:
        fake.clock = clock["t"]
        got |= {a.id for a in fetch(p, store)}
        clock["t"] += 5
    return n - len(got)


def test_late_indexed_articles_are_fetched_by_the_overlap_window(fake, store):
    assert lost_under_lag(fake, store, overlap_minutes=5, max_lag_s=15) == 0
    assert store.scalar("SELECT COUNT(*) FROM articles") == 35  # none twice
    cursor = parse_ts(store.get_cursor("news:alpaca:created_at"))
    assert fake.news_queries[-1]["start"] == z(cursor - timedelta(minutes=5))  # re-asks the overlap window


def test_without_overlap_late_articles_are_lost(fake, store):
    # the behaviour before the overlap window (overlap 0): a lag of up to 15 s loses articles
    assert lost_under_lag(fake, store, overlap_minutes=0, max_lag_s=15) > 0


def test_crypto_news_for_usdt_pairs_asks_for_the_usd_tag_and_maps_back(fake, store):
    fake.add_news(1, "Bitcoin ETF inflows hit a record", ["BTCUSD"], z(T0 + timedelta(minutes=1)))
    fake.add_news(2, "Ether upgrade ships", ["ETHUSD", "COIN"], z(T0 + timedelta(minutes=2)))
    p = provider(fake, symbols=("COIN", "BTC/USDT", "ETH/USDT"))
    got = fetch(p, store)
    assert fake.news_queries[0]["symbols"] == "COIN,BTCUSD,ETHUSD"
    assert {a.id: a.symbols for a in got} == {"alpaca:1": ("BTC/USDT",), "alpaca:2": ("ETH/USDT", "COIN")}


def test_page_size_is_the_requests_limit(fake, store):
    for i in range(12):
        fake.add_news(i, f"S{i}", ["AAPL"], z(T0 + timedelta(minutes=1, seconds=i)))
    got = fetch(provider(fake, page_size=5, max_pages=2), store)
    assert [q["limit"] for q in fake.news_queries] == ["5", "5"] and len(got) == 10
    got2 = fetch(provider(fake, page_size=5, max_pages=2), store)  # resumes at the cursor: the last two
    assert [a.id for a in got2] == ["alpaca:10", "alpaca:11"]


def test_an_html_error_page_is_a_provider_error_with_status_after_retries(fake, store):
    html = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
    fake.script["/v1beta1/news"] = [(503, html, {})] * 4
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as err:
        provider(fake, sleeps=sleeps, retries=3).fetch(store)
    e = err.value
    assert (e.provider, e.status, e.transient) == ("alpaca news", 503, True)
    assert "non-JSON" in e.reason and "503 Service" in str(e)
    assert len(fake.requests) == 4 and sleeps == [1, 2, 4]


def test_a_200_that_is_not_json_or_of_the_wrong_shape_is_a_provider_error(fake, store):
    fake.script["/v1beta1/news"] = [(200, "<html>maintenance</html>", {}), (200, {"articles": []}, {}),
                                    (200, {"news": {"id": 1}}, {})]
    for expected in ("not JSON", "unexpected body", "unexpected body"):
        with pytest.raises(ProviderError) as err:
            provider(fake, retries=0).fetch(store)
        assert err.value.provider == "alpaca news" and expected in str(err.value)


def test_a_bad_item_is_skipped_and_counted(fake, store):
    fake.add_news(1, "Good one", ["AAPL"], z(T0 + timedelta(minutes=1)))
    fake.add_news(2, "No time", ["AAPL"], z(T0 + timedelta(minutes=2)))
    fake.add_news(3, "Fine too", ["AAPL"], z(T0 + timedelta(minutes=3)))
    del fake.news[1]["headline"]
    p = provider(fake)
    got = fetch(p, store)
    assert [a.id for a in got] == ["alpaca:1", "alpaca:3"] and p.skipped == 1


def test_429_waits_what_retry_after_says_and_a_reset_is_retried(fake, store):
    fake.add_news(1, "Story", ["AAPL"], z(T0 + timedelta(minutes=1)))
    fake.script["/v1beta1/news"] = [(429, {"code": 42910000, "message": "rate limit exceeded"},
                                     {"Retry-After": "7"}), (0, "reset", None)]
    sleeps: list[float] = []
    got = provider(fake, sleeps=sleeps).fetch(store)
    assert [a.id for a in got] == ["alpaca:1"]
    assert sleeps[0] == 7 and len(sleeps) == 2 and len(fake.requests) == 3


def test_a_permanent_error_is_not_retried_and_a_key_echo_is_redacted(fake, store, monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", ALPACA_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", ALPACA_SECRET)
    fake.script["/v1beta1/news"] = [(403, {"code": 40310000, "message": f"forbidden for key {ALPACA_KEY}"}, {})]
    with pytest.raises(ProviderError) as err:
        provider(fake).fetch(store)
    e = err.value
    assert (e.status, e.transient) == (403, False) and len(fake.requests) == 1
    assert ALPACA_KEY not in str(e) and "[ALPACA_API_KEY]" in str(e)


def test_market_data_html_error_pages_and_wrong_shapes_are_provider_errors(fake):
    from datetime import datetime, timezone

    from tokenomics.adapters.market.alpaca import AlpacaMarketData, alpaca_timeframe

    html = "<html><body>502 Bad Gateway</body></html>"
    fake.script["/v2/stocks/trades/latest"] = [(502, html, {})] * 4 + [(200, {"trades": {"AAPL": {"p": "x"}}}, {})]
    md_sleeps: list[float] = []
    md = AlpacaMarketData(KEY, SECRET, url=fake.url, timeout=5, sleep=md_sleeps.append)
    with pytest.raises(ProviderError) as err:
        md.price("AAPL")
    assert (err.value.status, err.value.provider) == (502, "alpaca market data AAPL") and md_sleeps == [1, 2, 4]
    with pytest.raises(ProviderError) as err:
        md.price("AAPL")  # a 200 whose trade has no valid price
    assert err.value.provider == "alpaca market data AAPL"
    fake.script["/v2/stocks/bars"] = [(503, html, {})] * 4
    with pytest.raises(ProviderError) as err:
        md.bars("AAPL", alpaca_timeframe("1h"), datetime(2026, 1, 1, tzinfo=timezone.utc),
                datetime(2026, 1, 2, tzinfo=timezone.utc), 100)
    assert err.value.status == 503 and "resumes" in err.value.hint
