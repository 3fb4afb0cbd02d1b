"""The sentiment backtest replays history through run's own steps, without lookahead, and scores
each article once across backtests."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from tokenomics.research import bars
from tokenomics.research import backtest as replay
from tokenomics.core.models import Article, Score
from tokenomics.runtime import Options, Runtime
from tokenomics.store import iso

STEPS = 40


class CountingScorer:
    """A deterministic stand-in for the configured scorer (the chain, not the scorer, is under test):
    the sentiment follows a hash of the headline; it counts what it was asked."""

    name = "test-hash"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def score(self, articles: list[Article]) -> list[Score]:
        out = []
        for a in articles:
            self.asked.append(a.id)
            h = int(hashlib.sha256(a.headline.encode()).hexdigest(), 16)
            sentiment = "bullish" if "MOON" in a.headline or h % 3 == 0 else ("bearish" if h % 3 == 1 else "neutral")
            for sym in a.symbols:
                out.append(Score(a.id, sym, sentiment, 95 if "MOON" in a.headline else 70 + h % 30, "test", self.name))
        return out


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKENOMICS_LOGS__DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("TOKENOMICS_SIM__NEWS_PER_TICK", "3")
    r = Runtime(Options(db=tmp_path / "main.db"))
    yield r
    r.close()


def run(rt: Runtime, scorer: CountingScorer) -> dict:
    w = replay.Window(rt.sim_step() - STEPS, rt.sim_step())
    return replay.run_backtest(rt, "sentiment", w, {}, scorer=scorer)


def test_sentiment_backtest_trades_through_the_chain_and_scores_once(rt: Runtime) -> None:
    scorer = CountingScorer()
    first = run(rt, scorer)
    assert first["orders"], "the replay should trade"
    assert any(o["intent"] == "entry" and o["status"] == "filled" for o in first["orders"])
    assert first["scored"] == len(scorer.asked) > 0
    m = first["metrics"]
    assert m["fees"] > 0 and m["turnover"] > 0
    assert m["final_equity"] == pytest.approx(first["equity"][-1][1])
    assert len(first["equity"]) == STEPS + 1  # the start plus one point per tick
    # the live store is untouched: no orders, no positions, no fills there
    assert rt.store.scalar("SELECT COUNT(*) FROM orders") == 0
    assert rt.store.scalar("SELECT COUNT(*) FROM fills") == 0

    again = CountingScorer()
    second = run(rt, again)
    assert again.asked == [] and second["scored"] == 0  # every score came from the cache
    assert second["orders"] == first["orders"] and second["metrics"] == first["metrics"]


def test_no_lookahead_future_article_and_bar_change_nothing_before_their_time(rt: Runtime) -> None:
    base = run(rt, CountingScorer())
    t_step = rt.sim_step() - STEPS // 2
    t = rt.world.time_of(t_step)

    # a future article (bullish for BTC/USD, tradable around the clock) and a future bar at T
    with rt.store.tx():
        rt.store.insert_ignore("articles", [{
            "id": "future:1", "provider": "test", "headline": "$BTC MOON: record inflows", "summary": "",
            "symbols": json.dumps(["BTC/USD"]), "source": "test", "url": "", "created_at": iso(t),
            "fetched_at": iso(t), "status": "pending", "attempts": 0, "error": None}])
        for sym in rt.settings.universe.symbols:
            rt.store.execute("UPDATE bars SET open = open * 3, high = high * 3, low = low * 3, close = close * 3 "
                             "WHERE symbol = ? AND ts = ?", [sym, iso(t)])
    assert rt.store.scalar("SELECT COUNT(*) FROM bars WHERE ts = ?", [iso(t)]) >= 2
    after = run(rt, CountingScorer())

    def before(rows: list[dict], key: str) -> list[dict]:
        return [r for r in rows if r[key] < iso(t)]

    assert before(after["signals"], "created_at") == before(base["signals"], "created_at")
    assert before(after["orders"], "created_at") == before(base["orders"], "created_at")
    assert [e for e in after["equity"] if e[0] < iso(t)] == [e for e in base["equity"] if e[0] < iso(t)]
    # ...and both were used once their time came: the article made a signal, the bar moved equity
    assert any(s["id"] == "sentiment:future:1:BTC/USD" for s in after["signals"])
    assert not any(s["id"].startswith("sentiment:future:1") for s in base["signals"])
    later = iso(t + timedelta(minutes=rt.settings.sim.step_minutes))
    assert ([e for e in after["equity"] if e[0] >= later] != [e for e in base["equity"] if e[0] >= later])


@pytest.mark.parametrize("method", ["vol-target", "adaptive"])
def test_model_strategy_no_lookahead_a_future_bar_changes_no_prediction_size_or_price_before_its_close(
        rt: Runtime, method: str) -> None:
    """The replay store holds the whole window's bars: predictions, volatility-based sizes and fill
    prices before a bar's close must not see it (tripling a BTC bar 21 hours ahead once changed an
    earlier signal's size from 101.31 to 5.63)."""
    w = replay.Window(rt.sim_step() - 24, rt.sim_step())
    params = {"ml.min_probability": 0.5, "sizing.method": method}
    base = replay.run_backtest(rt, "model", w, params)
    t = rt.world.time_of(w.first + 12)
    with rt.store.tx():
        rt.store.execute("UPDATE bars SET open = open * 3, high = high * 3, low = low * 3, close = close * 3 "
                         "WHERE symbol = 'BTC/USD' AND ts = ?", [iso(t)])
    after = replay.run_backtest(rt, "model", w, params)
    closed = iso(t + rt.world.step_delta)  # the bar keyed at t is known from its close on

    def btc(rows: list[dict], keep) -> list[tuple]:
        return [(r["id"], r["strength"], r["status"], r["notional"], r["size_detail"]) for r in rows
                if r["symbol"] == "BTC/USD" and keep(r)]

    early = btc(base["signals"], lambda r: r["created_at"] < closed)
    assert early and early == btc(after["signals"], lambda r: r["created_at"] < closed)
    assert any(json.loads(r[4])["volatility"]["bars"] > 0 for r in early if r[4])  # sizes read bars
    assert btc(base["signals"], lambda r: r["created_at"] >= closed) != btc(after["signals"],
                                                                           lambda r: r["created_at"] >= closed)

    def fills(doc: dict) -> list[tuple]:  # an order sent before t fills at the bar opening at t, or earlier
        return [(o["client_order_id"], o["status"], o["filled_qty"], o["filled_avg_price"]) for o in doc["orders"]
                if o["created_at"] < iso(t)]

    assert fills(base) and fills(base) == fills(after)
    assert [e for e in base["equity"] if e[0] < closed] == [e for e in after["equity"] if e[0] < closed]


def test_bars_are_known_only_once_closed(rt: Runtime) -> None:
    bars.ensure_sim_bars(rt, 1, 30)
    known = replay.Bars(rt.store, "sim", replay.timeframe(rt), rt.world.step_delta)
    t = rt.world.time_of(10)  # the BTC bar keyed at t closes at t + 1 step
    assert known.last_close("BTC/USD", t) == rt.world.price("BTC/USD", 10)
    assert known.next_open("BTC/USD", t) == rt.world.price("BTC/USD", 10)
    assert known.last_close("BTC/USD", t + rt.world.step_delta) == rt.world.price("BTC/USD", 11)
    assert bars.ensure_sim_bars(rt, 1, 30) == 0  # stored once
