"""Alpaca broker, news and market data through the real alpaca-py, against a loopback fake."""

from __future__ import annotations

import pytest

from tests.fakes import ALPACA_KEY, ALPACA_SECRET
from tokenomics.adapters.brokers.alpaca import AlpacaBroker
from tokenomics.adapters.brokers.base import OrderRequest
from tokenomics.adapters.market.alpaca import AlpacaMarketData
from tokenomics.adapters.news.alpaca import CURSOR, AlpacaNews
from tokenomics.config import NewsSettings
from tokenomics.core.errors import ProviderError
from tokenomics.keys import Key
from tokenomics.store import parse_ts

KEY, SECRET = Key("ALPACA_API_KEY", ALPACA_KEY), Key("ALPACA_SECRET_KEY", ALPACA_SECRET)


def broker(fake, booked=None, timeout=5.0, **kw) -> AlpacaBroker:
    return AlpacaBroker(KEY, SECRET, paper=True, url=fake.url, timeout=timeout,
                        booked=booked or (lambda _coid: (0.0, 0.0)), price=lambda s: fake.prices[s],
                        crypto=["BTC/USD"], stop_loss_pct=2.5, take_profit_pct=6.0, **kw)


def test_equity_entry_is_a_bracket_with_whole_shares(fake):
    upd = broker(fake).submit(OrderRequest("tkn-1", "AAPL", "buy", "equity", notional=1000.0))
    sent = fake.posts[0]
    assert sent["order_class"] == "bracket" and float(sent["qty"]) == 5 and sent["time_in_force"] == "gtc"
    assert sent["take_profit"]["limit_price"] == pytest.approx(212.0)
    assert sent["stop_loss"]["stop_price"] == pytest.approx(195.0)
    assert upd.status == "filled" and upd.fills[0].qty == 5 and upd.fills[0].price == 200.0


def test_small_equity_entry_is_a_simple_notional_day_order(fake):
    broker(fake).submit(OrderRequest("tkn-2", "AAPL", "buy", "equity", notional=150.0))
    assert float(fake.posts[0]["notional"]) == 150.0 and fake.posts[0]["time_in_force"] == "day"
    assert fake.posts[0].get("order_class") in (None, "simple")


def test_crypto_orders_use_the_pair_and_gtc(fake):
    upd = broker(fake).submit(OrderRequest("tkn-3", "BTC/USD", "buy", "crypto", notional=950.0))
    assert fake.posts[0]["symbol"] == "BTC/USD" and fake.posts[0]["time_in_force"] == "gtc"
    assert upd.fills[0].qty == pytest.approx(0.01)
    fake.positions["BTC/USD"] = 0.0099  # the fee came out of the coin; positions say BTCUSD
    assert broker(fake).positions() == {"BTC/USD": 0.0099}
    broker(fake).submit(OrderRequest("tkn-4", "BTC/USD", "sell", "crypto", qty=0.01))
    assert float(fake.posts[1]["qty"]) == pytest.approx(0.0099)  # never more than held


def test_lookup_by_client_order_id(fake):
    b = broker(fake)
    assert b.get_order("tkn-none") is None
    b.submit(OrderRequest("tkn-5", "AAPL", "buy", "equity", notional=150.0))
    assert b.get_order("tkn-5").status == "filled"


def test_submit_that_times_out_after_acceptance_is_found_not_resent(fake):
    fake.fill_mode, fake.slow_seconds = "slow", 1.5
    upd = broker(fake, timeout=0.3).submit(OrderRequest("tkn-6", "AAPL", "buy", "equity", notional=150.0))
    assert upd.status == "submitted" and upd.broker_order_id == fake.orders["tkn-6"]["id"]
    assert len(fake.posts) == 1


def test_duplicate_client_order_id_returns_the_original(fake):
    b = broker(fake)
    b.submit(OrderRequest("tkn-7", "AAPL", "buy", "equity", notional=150.0))
    again = b.submit(OrderRequest("tkn-7", "AAPL", "buy", "equity", notional=150.0))
    assert again.status == "filled" and len(fake.orders) == 1


def test_partial_fills_are_reported_as_deltas(fake):
    booked = {"q": 0.0, "v": 0.0}
    b = broker(fake, booked=lambda _c: (booked["q"], booked["v"]))
    fake.fill_mode = "partial"
    first = b.submit(OrderRequest("tkn-8", "BTC/USD", "buy", "crypto", notional=1900.0))
    assert first.status == "partially_filled" and first.fills[0].qty == pytest.approx(0.01)
    booked.update(q=0.01, v=0.01 * 95000)
    assert b.get_order("tkn-8").fills == ()  # nothing new
    fake.prices["BTC/USD"] = 96000.0
    fake.fill("tkn-8")  # the rest fills; the order's average is 96000 over 0.02
    second = b.get_order("tkn-8")
    assert second.status == "filled" and second.fills[0].qty == pytest.approx(0.01)
    assert second.fills[0].price == pytest.approx(97000.0)  # 0.02*96000 - 0.01*95000 over 0.01


def test_insufficient_funds_is_a_rejection(fake):
    fake.fill_mode = "funds"
    upd = broker(fake).submit(OrderRequest("tkn-9", "AAPL", "buy", "equity", notional=150.0))
    assert upd.status == "rejected" and "insufficient buying power" in upd.error


def test_network_failure_raises_without_sending(fake):
    b = AlpacaBroker(KEY, SECRET, paper=True, url="http://127.0.0.1:9", timeout=0.5, booked=lambda c: (0, 0),
                     price=lambda s: 1.0, crypto=[], stop_loss_pct=2, take_profit_pct=5)
    with pytest.raises(ProviderError) as err:
        b.submit(OrderRequest("tkn-10", "AAPL", "buy", "equity", notional=150.0))
    assert ALPACA_KEY not in str(err.value) and ALPACA_SECRET not in str(err.value)


def test_clock_account_and_prices(fake):
    b = broker(fake)
    assert b.clock()["is_open"] is True and b.account()["status"] == "ACTIVE"
    md = AlpacaMarketData(KEY, SECRET, url=fake.url, timeout=5)
    assert md.price("AAPL") == 200.0 and md.price("BTC/USD") == 95000.0


def news(fake, store, **kw):
    s = NewsSettings(provider="alpaca", alpaca_url=fake.url, page_size=2, max_pages=2, **kw)
    return AlpacaNews(s, ["AAPL", "TSLA", "BTC/USD"], ["BTC/USD"], KEY, SECRET,
                      lambda: parse_ts("2026-03-02T16:00:00+00:00"))


def fetch(provider, store):
    from tokenomics.trading.news import article_row

    got = provider.fetch(store)
    with store.tx():
        store.insert_ignore("articles", [article_row(a, parse_ts("2026-03-02T16:00:00+00:00")) for a in got])
        provider.commit(store)
    return got


def test_news_cursor_pages_and_restarts_without_gaps_or_duplicates(fake, store):
    for i in range(5):
        fake.add_news(100 + i, f"Story {i}", ["AAPL"], f"2026-03-02T15:1{i}:00Z")
    fake.add_news(99, "Too old", ["AAPL"], "2026-03-02T14:00:00Z")  # before the 60 min lookback
    first = fetch(news(fake, store), store)
    assert [a.id for a in first] == ["alpaca:100", "alpaca:101", "alpaca:102", "alpaca:103"]  # 2 pages of 2
    assert store.get_cursor(CURSOR) == "2026-03-02T15:13:00+00:00"
    fake.add_news(105, "Story 5", ["AAPL", "BTCUSD", "XYZ"], "2026-03-02T15:20:00Z")
    second = fetch(news(fake, store), store)  # a fresh adapter: a restart
    ids = [a.id for a in second]
    assert "alpaca:104" in ids and "alpaca:105" in ids
    assert store.scalar("SELECT COUNT(*) FROM articles") == 6
    assert [a.symbols for a in second if a.id == "alpaca:105"] == [("AAPL", "BTC/USD")]
    assert all(p == "/v1beta1/news" for m, p in fake.requests)


def test_syndicated_copies_are_stored_once_as_stories(fake, rt):
    from tokenomics.trading.news import store_articles

    rt.advance(900)  # the sim clock past the articles' dates: an article from the future is rejected
    fake.add_news(1, "Apple beats estimates", ["AAPL"], "2026-03-02T15:10:00Z")
    fake.add_news(2, "Apple  beats estimates", ["AAPL"], "2026-03-02T15:12:00Z")
    fake.add_news(3, "Apple beats estimates", ["TSLA"], "2026-03-02T15:12:00Z")
    assert store_articles(rt, news(fake, rt.store).fetch(rt.store)) == (3, 1)
    fake.add_news(4, "Apple beats estimates", ["AAPL"], "2026-03-02T15:30:00Z")  # later run, same story
    assert store_articles(rt, news(fake, rt.store).fetch(rt.store)) == (1, 1)
    rows = {r["id"]: (r["status"], r["duplicate_of"]) for r in rt.store.all("SELECT * FROM articles")}
    assert rows == {"alpaca:1": ("pending", None), "alpaca:2": ("duplicate", "alpaca:1"),
                    "alpaca:3": ("pending", None), "alpaca:4": ("duplicate", "alpaca:1")}
