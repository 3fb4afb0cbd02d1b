"""Research on real history: past news backfilled from a JSON-lines file (and Alpaca's historical
news through a loopback fake) and a sentiment backtest over real daily bars, delivered at each
article's created_at, scored once, with nothing before a future article or bar changing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.integration.test_backtest_replay import CountingScorer
from tokenomics.research import backtest as replay
from tokenomics.research import bars as bars_mod
from tokenomics.runtime import Options, Runtime
from tokenomics.store import iso
from tokenomics.trading import news

pytest.importorskip("backtesting")


def articles(n: int = 60) -> list[dict]:
    """Dated GOOG stories through 2012 at 15:00 UTC (in session), every fourth one unmistakably bullish."""
    t0 = datetime(2012, 1, 16, 15, tzinfo=timezone.utc)
    return [{"id": f"a{i}", "headline": f"Google shares climb, story {i}" + (" MOON" if i % 4 == 0 else ""), "symbols": ["GOOG"],
             "created_at": iso(t0 + timedelta(days=5 * i)), "source": "test"} for i in range(n)]


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from backtesting.test import GOOG

    monkeypatch.chdir(tmp_path)
    for k, v in {"LOGS__DIR": str(tmp_path / "logs"), "UNIVERSE__EQUITIES": '["GOOG"]', "UNIVERSE__CRYPTO": "[]",
                 "NEWS__PROVIDER": "file", "NEWS__FILE": str(tmp_path / "news.jsonl")}.items():
        monkeypatch.setenv(f"TOKENOMICS_{k}", v)
    (tmp_path / "news.jsonl").write_text("".join(json.dumps(a) + "\n" for a in articles()))
    GOOG.loc["2011-06-01":].rename_axis("Date").to_csv(tmp_path / "goog.csv")  # real-format daily bars
    r = Runtime(Options(db=tmp_path / "main.db"))
    bars_mod.fetch_file(r, tmp_path / "goog.csv", "GOOG", "1d")
    yield r
    r.close()


def test_backfill_from_a_jsonl_file_is_idempotent_and_keeps_the_range(rt: Runtime) -> None:
    since, until = datetime(2012, 1, 1, tzinfo=timezone.utc), datetime(2012, 6, 30, tzinfo=timezone.utc)
    first = news.backfill(rt, since, until)
    inside = [a for a in articles() if iso(since) <= a["created_at"] <= iso(until)]
    assert first["new"] == first["fetched"] == len(inside) > 10
    again = news.backfill(rt, since, until)
    assert again["new"] == 0 and again["resumed_from"] is not None
    assert rt.store.scalar("SELECT COUNT(*) FROM articles") == len(inside)


def test_alpaca_historical_news_backfill_pages_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import ALPACA_KEY, ALPACA_SECRET, FakeProviders

    monkeypatch.chdir(tmp_path)
    with FakeProviders() as fake:
        for i in range(130):
            fake.add_news(1000 + i, f"Apple story {i}", ["AAPL"], f"2024-03-{1 + i // 10:02d}T15:{i % 10:02d}:00Z")
        fake.add_news(5000, "Too late", ["AAPL"], "2024-06-01T15:00:00Z")
        for k, v in {"LOGS__DIR": str(tmp_path / "logs"), "NEWS__PROVIDER": "alpaca", "NEWS__ALPACA_URL": fake.url,
                     "NEWS__PAGE_SIZE": "50", "NEWS__MAX_PAGES": "1", "MODE": "sim"}.items():
            monkeypatch.setenv(f"TOKENOMICS_{k}", v)
        monkeypatch.setenv("ALPACA_API_KEY", ALPACA_KEY)
        monkeypatch.setenv("ALPACA_SECRET_KEY", ALPACA_SECRET)
        rt = Runtime(Options(db=tmp_path / "main.db"))
        try:
            since, until = datetime(2024, 3, 1, tzinfo=timezone.utc), datetime(2024, 4, 1, tzinfo=timezone.utc)
            out = news.backfill(rt, since, until)
            assert out["new"] == 130 and out["pages"] == 3
            assert rt.store.scalar("SELECT COUNT(*) FROM articles WHERE headline = 'Too late'") == 0
            asked = len(fake.requests)
            again = news.backfill(rt, since, until)  # resumes at the last stored article: one short page
            assert again["new"] == 0 and len(fake.requests) - asked == 1
        finally:
            rt.close()


def run(rt: Runtime, scorer: CountingScorer) -> dict:
    w = replay.window(rt, "2012-01-02", "2012-12-31", None, source="file", tf="1d", symbols=["GOOG"])
    return replay.run_backtest(rt, "sentiment", w, {}, scorer=scorer)


def test_sentiment_backtest_over_real_daily_bars_and_past_news(rt: Runtime) -> None:
    news.backfill(rt, datetime(2012, 1, 1, tzinfo=timezone.utc), datetime(2013, 1, 1, tzinfo=timezone.utc))
    scorer = CountingScorer()
    first = run(rt, scorer)
    assert first["source"] == "file" and first["timeframe"] == "1d"
    filled = [o for o in first["orders"] if o["status"] == "filled"]
    assert any(o["intent"] == "entry" for o in filled)
    # each entry filled at the open of the session after the article's bar close (next_open)
    from backtesting.test import GOOG

    import bisect

    days = [d.strftime("%Y-%m-%d") for d in GOOG.index]
    for o in filled:  # the first session opening at or after the order (a Saturday's order: Monday's open)
        raw = GOOG.Open.iloc[bisect.bisect_left(days, o["created_at"][:10])]
        assert o["filled_avg_price"] == pytest.approx(raw * (1 + 5e-4 if o["side"] == "buy" else 1 - 5e-4))
    assert first["articles"] == first["scored"] == len(set(scorer.asked)) > 30
    assert first["tokens"] == 0 and first["cost_usd"] == 0  # the stand-in scorer calls no LLM
    assert "benchmark" in first and first["benchmark_equity"][0][0] == first["equity"][0][0]
    again = CountingScorer()
    second = run(rt, again)
    assert again.asked == [] and second["scored"] == 0 and second["articles"] == first["articles"]
    assert second["orders"] == first["orders"]


def test_a_future_article_and_a_future_bar_change_nothing_before_their_time(rt: Runtime) -> None:
    news.backfill(rt, datetime(2012, 1, 1, tzinfo=timezone.utc), datetime(2013, 1, 1, tzinfo=timezone.utc))
    base = run(rt, CountingScorer())
    t = datetime(2012, 7, 2, tzinfo=timezone.utc)  # a Monday: the bar keyed at t closes at t + 1 day
    with rt.store.tx():
        rt.store.insert_ignore("articles", [{
            "id": "future:1", "provider": "test", "headline": "$GOOG MOON: record quarter", "summary": "",
            "symbols": json.dumps(["GOOG"]), "source": "test", "url": "", "created_at": iso(t + timedelta(hours=15)),
            "fetched_at": iso(t), "status": "pending", "attempts": 0, "error": None}])
        assert rt.store.execute("UPDATE bars SET open = open * 3, high = high * 3, low = low * 3, close = close * 3 "
                                "WHERE symbol = 'GOOG' AND ts = ?", [iso(t)]).rowcount == 1
    after = run(rt, CountingScorer())

    def before(rows: list[dict], key: str) -> list[dict]:
        return [r for r in rows if r[key] < iso(t)]

    assert before(after["signals"], "created_at") == before(base["signals"], "created_at")
    assert before(after["orders"], "created_at") == before(base["orders"], "created_at")
    assert [e for e in after["equity"] if e[0] <= iso(t)] == [e for e in base["equity"] if e[0] <= iso(t)]
    assert any(s["id"] == "sentiment:future:1:GOOG" for s in after["signals"])
    assert after["equity"] != base["equity"]
