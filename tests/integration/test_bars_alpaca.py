"""fetch-bars from Alpaca through the real alpaca-py data clients, against the loopback fake."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.fakes import ALPACA_KEY, ALPACA_SECRET
from tokenomics.research import bars
from tokenomics.adapters.market.alpaca import AlpacaMarketData
from tokenomics.core.errors import ProviderError
from tokenomics.keys import Key

KEY, SECRET = Key("ALPACA_API_KEY", ALPACA_KEY), Key("ALPACA_SECRET_KEY", ALPACA_SECRET)
T0 = datetime(2024, 1, 2, 14, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def fetch(store, fake, symbol, hours, page_limit=1000):
    md = AlpacaMarketData(KEY, SECRET, url=fake.url, timeout=5)
    until = T0 + hours * H + timedelta(minutes=30)  # the bar opened at `hours` has not closed yet
    return bars.fetch_alpaca(store, md, [symbol], "1h", T0, until, page_limit)[0]


def stored(store, symbol):
    return store.all("SELECT ts, open, close, volume FROM bars WHERE source = 'alpaca' AND symbol = ? ORDER BY ts",
                     [symbol])


def test_pages_follow_next_page_token_and_resume_after_each_page(store, fake):
    fake.add_bars("AAPL", T0, 11, H, skip=(5,))  # bar 10 is still forming at `until`
    fake.bars_page_size = 3  # the server cuts each request of 4 into pages of 3 and 1
    out = fetch(store, fake, "AAPL", 10, page_limit=4)
    rows = stored(store, "AAPL")
    assert [r["ts"] for r in rows] == [(T0 + i * H).isoformat() for i in range(10) if i != 5]
    assert rows[-1] == {"ts": (T0 + 9 * H).isoformat(), "open": 108.5, "close": 109.0, "volume": 1009.0}
    assert out["fetched"] == out["new"] == 9 and out["gaps"] == 1 and out["missing_bars"] == 1
    assert out["last"] == (T0 + 9 * H).isoformat()
    q = fake.bar_queries
    assert {x["path"] for x in q} == {"/v2/stocks/bars"} and {x["symbols"] for x in q} == {"AAPL"}
    assert {x["timeframe"] for x in q} == {"1Hour"}
    assert q[0].get("page_token") is None and q[1]["page_token"] == "3"  # 2 pages of one request
    assert datetime.fromisoformat(q[0]["start"]) == T0 and datetime.fromisoformat(q[0]["end"]) == T0 + 9 * H + H / 2
    assert datetime.fromisoformat(q[2]["start"]) == T0 + 4 * H  # the next request starts after the last bar
    assert all(int(x["limit"]) <= 4 for x in q)


def test_rerun_inserts_nothing_and_asks_only_for_new_bars(store, fake):
    fake.add_bars("BTC/USD", T0, 30, H)
    fetch(store, fake, "BTC/USD", 20)
    assert len(stored(store, "BTC/USD")) == 20
    assert {x["path"] for x in fake.bar_queries} == {"/v1beta3/crypto/us/bars"}
    assert {x["symbols"] for x in fake.bar_queries} == {"BTC/USD"}
    fake.bar_queries.clear()
    again = fetch(store, fake, "BTC/USD", 20)
    assert again["new"] == 0 and again["fetched"] == 0 and len(stored(store, "BTC/USD")) == 20
    assert fake.bar_queries == []  # nothing new can have closed yet
    later = fetch(store, fake, "BTC/USD", 25)
    assert later["new"] == 5 and len(stored(store, "BTC/USD")) == 25
    assert datetime.fromisoformat(fake.bar_queries[0]["start"]) == T0 + 20 * H


def test_http_500_is_a_provider_error_naming_the_symbol_and_keeps_committed_pages(store, fake):
    fake.add_bars("AAPL", T0, 10, H)
    fetch(store, fake, "AAPL", 4)
    fake.bars_errors["AAPL"] = 500
    with pytest.raises(ProviderError) as err:
        fetch(store, fake, "AAPL", 9)
    msg = str(err.value)
    assert "AAPL" in msg and "500" in msg and ALPACA_KEY not in msg and ALPACA_SECRET not in msg
    assert len(stored(store, "AAPL")) == 4
    del fake.bars_errors["AAPL"]
    assert fetch(store, fake, "AAPL", 9)["new"] == 5
