"""The simulated world: deterministic, NYSE-gated for equities, and its news carries a real edge."""

from datetime import datetime, timezone

import numpy as np
import pytest

from tokenomics.adapters.calendar import MarketCalendar
from tokenomics.adapters.sim import SimWorld, headline_for
from tokenomics.config import Settings


@pytest.fixture(scope="module")
def calendar():
    return MarketCalendar.load(None, datetime(2025, 1, 1).date(), datetime(2027, 12, 31).date())


def world(calendar, **sim):
    return SimWorld(Settings(sim=sim), calendar)


def test_same_seed_same_world_and_extension_keeps_history(calendar):
    a, b = world(calendar), world(calendar)
    assert a.prices(700) == b.prices(700)
    assert [x.headline for x in a.articles(650)] == [x.headline for x in b.articles(650)]
    c = world(calendar)
    early = c.prices(300)
    c.prices(3000)
    assert c.prices(300) == early
    assert world(calendar, seed=8).prices(700) != a.prices(700)


def test_equities_are_flat_outside_nyse_sessions_and_crypto_moves(calendar):
    w = world(calendar)
    steps = range(1, 400)
    for k in steps:
        t = w.time_of(k)
        p0, p1 = w.prices(k - 1), w.prices(k)
        if not calendar.is_open("equity", t):
            assert p0["AAPL"] == p1["AAPL"], t
    moved = sum(w.prices(k - 1)["BTC/USD"] != w.prices(k)["BTC/USD"] for k in steps)
    assert moved > 390
    # 2026-01-19 is Martin Luther King Jr. Day: NYSE closed all day
    holiday = datetime(2026, 1, 19, 17, 0, tzinfo=timezone.utc)
    assert not calendar.is_open("equity", holiday) and calendar.is_open("crypto", holiday)


def test_headlines_move_prices_in_their_direction_with_the_configured_probability(calendar):
    w = world(calendar, move_probability=0.8, news_per_tick=3)
    agree = total = 0
    for k in range(1, 2500):
        for n in w.news(k):
            if n.label == "neutral":
                continue
            total += 1
            agree += (n.direction == (1 if n.label == "bullish" else -1))
    assert total > 1000
    assert abs(agree / total - 0.8) < 0.03


def test_bullish_news_is_followed_by_higher_returns(calendar):
    w = world(calendar, news_per_tick=2)
    rets = {"bullish": [], "bearish": []}
    w.prices(3000)
    for k in range(1, 2900):
        for n in w.news(k):
            if n.label == "neutral":
                continue
            p = w.prices(k)[n.symbol]
            # the next step at which the symbol trades carries the move
            j = k + 1
            while w.prices(j)[n.symbol] == p and j < k + 100:
                j += 1
            rets[n.label].append(np.log(w.prices(j)[n.symbol] / p))
    # other headlines land on the same bars too, so compare the two groups: the gap is the edge
    assert np.mean(rets["bullish"]) - np.mean(rets["bearish"]) > 0.015


def test_headline_names_the_simulated_symbol():
    assert headline_for("$BYND - JPMorgan cuts Beyond Meat https://t.co/x", "AAPL") == "$AAPL - JPMorgan cuts Beyond Meat"
    assert headline_for("Stocks rally into the close", "BTC/USD") == "$BTC: Stocks rally into the close"


def test_bars_are_keyed_by_open_time_and_consistent(calendar):
    w = world(calendar)
    bars = w.bars(600, 620)
    assert bars
    for b in bars:
        assert b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]
        assert b["timeframe"] == "1h"
    btc = [b for b in bars if b["symbol"] == "BTC/USD"]
    assert btc[0]["ts"] == w.time_of(599).isoformat(timespec="seconds")
    assert btc[-1]["close"] == w.price("BTC/USD", 620)


def test_a_world_extended_step_by_step_plays_the_same_prices_as_a_fresh_one(calendar):
    """Prices are a pure function of (seed, step): a loop's world, extended one step per tick, and a
    fresh process's, built at each step, see the same prices (issue 14: ETH 2456.20 vs 2456.26)."""
    loop = world(calendar)
    loop.prices(500)
    for k in range(501, 560):
        assert loop.prices(k) == world(calendar).prices(k), k
    assert loop.bars(540, 559) == world(calendar).bars(540, 559)


def test_a_world_over_a_store_resumes_from_its_checkpoints(calendar, tmp_path):
    """A fresh process far into the sim computes the last block of the path, not the path from step 0
    (the state at each block's end is kept in the store), and sees the same prices as a fresh world."""
    from tokenomics.store import Store

    st = Store.open(tmp_path / "w.db")
    first = SimWorld(Settings(), calendar, store=st)
    far = 10_500
    expected = first.prices(far)
    resumed = SimWorld(Settings(), calendar, store=st)
    assert resumed.prices(far) == expected
    assert resumed.bars(far - 3, far) == first.bars(far - 3, far)
    assert set(resumed._blocks) <= {far // 1024}  # no random block of the earlier steps was drawn
    other = SimWorld(Settings(sim={"seed": 8}), calendar, store=st)  # another world: its own checkpoints
    assert other.prices(far) == world(calendar, seed=8).prices(far) != expected
    st.close()


def test_bars_of_some_symbols_are_those_symbols_bars(calendar):
    w = world(calendar)
    every = w.bars(900, 1100)
    assert w.bars(900, 1100, ("BTC/USD",)) == [b for b in every if b["symbol"] == "BTC/USD"]
    assert w.bars(900, 1100, {"AAPL", "ETH/USD"}) == [b for b in every if b["symbol"] in ("AAPL", "ETH/USD")]
