"""The account as the broker sees it, through the real alpaca-py against the loopback fake:
`rebalance` weighs the broker's positions and cash; `reconcile --accept` books a position closed
at the broker as a closed trade with its realized P&L."""

from __future__ import annotations

import math
import os
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from tests.fakes import ALPACA_KEY, ALPACA_SECRET, GEMINI_KEY, FakeProviders
from tokenomics.store import Store, iso

KEYS = {"ALPACA_API_KEY": ALPACA_KEY, "ALPACA_SECRET_KEY": ALPACA_SECRET, "GOOGLE_API_KEY": GEMINI_KEY}
ARGS = ("--mode", "paper", "--config", "paper.yaml")


@pytest.fixture
def fake():
    with FakeProviders() as f:
        yield f


def write_config(cli, url: str, extra: str = "") -> None:
    (cli.cwd / "paper.yaml").write_text(f"""
mode: paper
universe: {{equities: [AAPL, MSFT], crypto: [BTC/USD]}}
news: {{provider: alpaca, alpaca_url: "{url}"}}
sentiment: {{provider: gemini, base_url: "{url}", retries: 1, backoff_seconds: 0}}
broker: {{provider: alpaca, trading_url: "{url}", data_url: "{url}", timeout_seconds: 5}}
{extra}
""")


def store_bars(cli, symbols: dict[str, float], n: int = 60) -> None:
    """Daily closes before now for each symbol (a deterministic wiggle), as fetch-bars would store."""
    st = Store.open(cli.cwd / "store.db")
    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=n + 1)
    rows = []
    for k, (sym, base) in enumerate(symbols.items()):
        for i in range(n):
            c = base * (1 + 0.02 * math.sin(i * (0.7 + 0.3 * k)) + 0.001 * i)
            rows.append({"source": "test", "symbol": sym, "timeframe": "1d", "ts": iso(start + timedelta(days=i)),
                         "open": c, "high": c * 1.01, "low": c * 0.99, "close": c, "volume": 1000.0})
    with st.tx():
        st.insert_ignore("bars", rows)
    st.close()


def distance(weights: dict[str, float], target: dict[str, float]) -> float:
    return sum(abs(weights.get(s, 0.0) - target.get(s, 0.0)) for s in set(weights) | set(target) if s != "cash")


def broker_weights(fake) -> dict[str, float]:
    """The fake account's weights: each universe position's qty x price over cash plus those positions."""
    values = {s: q * fake.prices[s] for s, q in fake.positions.items() if s in ("AAPL", "MSFT", "BTC/USD") and q}
    equity = fake.cash() + sum(values.values())
    return {s: v / equity for s, v in values.items()}


def test_rebalance_weighs_the_alpaca_account_and_executes_toward_target(cli, fake):
    write_config(cli, fake.url, "risk: {max_position_pct: 50, max_asset_class_pct: {equity: 100, crypto: 100}}")
    fake.prices.update({"MSFT": 400.0, "GME": 25.0})
    fake.starting_cash = 5000.0
    fake.positions.update({"AAPL": 10.0, "BTC/USD": 0.05, "GME": 3.0})  # GME: bought by hand, not in the universe
    store_bars(cli, {"AAPL": 200.0, "MSFT": 400.0, "BTC/USD": 95000.0})
    rebalance = ("rebalance", "--method", "equal", *ARGS)

    plan = cli.json(*rebalance, env=KEYS)
    equity = 5000.0 + 10 * 200.0 + 0.05 * 95000.0  # cash + universe positions at current prices
    assert plan["equity"] == pytest.approx(equity) and plan["cash"] == pytest.approx(5000.0)
    assert plan["current_weights"] == pytest.approx({"AAPL": 2000 / equity, "BTC/USD": 4750 / equity,
                                                     "cash": 5000 / equity}, abs=1e-6)
    assert plan["account"]["source"] == "alpaca"
    assert plan["account"]["unmanaged"] == [{"symbol": "GME", "qty": 3.0, "price": 25.0, "value": 75.0}]
    target = plan["target_weights"]
    assert target == pytest.approx({"AAPL": 1 / 3, "MSFT": 1 / 3, "BTC/USD": 1 / 3})
    sides = {t["symbol"]: t["side"] for t in plan["trades"] if t["status"] == "planned"}
    assert sides == {"AAPL": "buy", "MSFT": "buy", "BTC/USD": "sell"} and "GME" not in str(plan["trades"])
    assert distance(plan["after_weights"], target) < distance(plan["current_weights"], target) / 10
    assert any("AAPL" in w and "reconcile" in w for w in plan["warnings"])  # the store has not adopted them yet

    refused = cli(*rebalance, "--execute", "--json", env=KEYS)  # store and broker disagree: nothing is sent
    assert refused.returncode == 3 and "reconcile" in refused.stderr and fake.posts == []

    adopted = cli.json("reconcile", "--accept", *ARGS, env=KEYS)
    assert {r["symbol"] for r in adopted["rows"]} == {"AAPL", "BTC/USD"}  # never GME
    status = cli.json("status", *ARGS, env=KEYS)  # adopted as entries at market: the store's cash paid for them
    assert {p["symbol"]: p["qty"] for p in status["positions"]} == {"AAPL": 10.0, "BTC/USD": 0.05}
    assert status["cash"] == pytest.approx(10000 - 10 * 200.0 - 0.05 * 95000.0)
    assert status["equity"] == pytest.approx(10000.0)  # no equity out of nothing
    before = distance(broker_weights(fake), target)
    done = cli.json(*rebalance, "--execute", env=KEYS)
    sent = [o for o in done["orders"] if "client_order_id" in o]
    assert {o["symbol"]: o["status"] for o in sent} == {"AAPL": "filled", "MSFT": "filled", "BTC/USD": "filled"}
    assert fake.posts[0]["symbol"] == "BTC/USD" and fake.posts[0]["side"] == "sell"  # sells first
    after = broker_weights(fake)
    assert distance(after, target) < before / 4 and fake.positions["GME"] == 3.0
    posts = len(fake.posts)
    again = cli.json(*rebalance, "--execute", env=KEYS)
    assert len(fake.posts) == posts and all("client_order_id" not in o for o in again["orders"])


def open_positions(cli, fake, news: dict[str, str]) -> dict[str, dict]:
    """A paper run: news in, Gemini (fake) scores it bullish, each symbol bought through the fake;
    the entry fills as booked, by symbol."""
    recent = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(timespec="seconds")
    for n, (symbol, headline) in enumerate(news.items(), 1):
        fake.add_news(n, headline, [symbol], recent.replace("+00:00", "Z"))
    out = cli.json("run", "--once", *ARGS, env=KEYS)
    assert out["open_positions"] == len(news) and all(fake.positions[s] > 0 for s in news)
    return {s: _row(cli, f"SELECT * FROM fills WHERE symbol = '{s}'") for s in news}


def _row(cli, sql: str) -> dict:
    con = sqlite3.connect(cli.cwd / "store.db")
    con.row_factory = sqlite3.Row
    try:
        row = con.execute(sql).fetchone()
        return dict(row) if row else {}
    finally:
        con.close()


def _count(cli, table: str) -> int:
    con = sqlite3.connect(cli.cwd / "store.db")
    try:
        return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_reconcile_accept_books_a_hand_close_as_a_closed_trade(cli, fake):
    write_config(cli, fake.url)
    entry = open_positions(cli, fake, {"AAPL": "Apple smashes earnings expectations"})["AAPL"]
    qty, capital = entry["qty"], 10000.0
    assert qty > 0 and entry["price"] == 200.0
    broker_cash0, store_cash0 = fake.cash(), capital + entry["cash_flow"]
    hand = fake.close_by_hand("AAPL", 212.37)  # sold by a person in Alpaca's web UI at a known price
    fake.prices["AAPL"] = 215.0  # the market has moved on since

    seen = cli.json("reconcile", *ARGS, env=KEYS)
    (row,) = seen["rows"]
    assert row["symbol"] == "AAPL" and row["store_view"] == qty and row["broker_view"] == 0
    assert row["exit_price"] == 212.37 and hand["id"] in row["price_source"]
    assert _count(cli, "trades") == 0  # shown, not booked
    blocked = cli.json("trade", *ARGS, env=KEYS)
    assert blocked["blocked_by_reconcile"] is True

    accepted = cli.json("reconcile", "--accept", *ARGS, env=KEYS)
    assert accepted["accepted"] is True and accepted["differences"] == 1
    trade = _row(cli, "SELECT * FROM trades")
    expected_pnl = round((212.37 - entry["price"]) * qty - entry["fee"], 2)
    assert trade["symbol"] == "AAPL" and trade["qty"] == qty and trade["exit_price"] == 212.37
    assert trade["pnl"] == pytest.approx(expected_pnl, abs=0.005) and trade["exit_reason"] == "closed_at_broker"
    assert accepted["realized_pnl"] == pytest.approx(expected_pnl, abs=0.005)
    status = cli.json("status", *ARGS, env=KEYS)
    assert status["positions"] == [] and status["realized_pnl"] == pytest.approx(expected_pnl, abs=0.005)
    assert status["cash"] == pytest.approx(capital + expected_pnl, abs=0.005)
    assert status["cash"] - store_cash0 == pytest.approx(fake.cash() - broker_cash0, abs=0.005)  # the same money
    diffs = sqlite3.connect(cli.cwd / "store.db").execute("SELECT status FROM reconcile_diffs").fetchall()
    assert ("accepted",) in diffs and ("open",) not in diffs

    booked = (_count(cli, "fills"), _count(cli, "orders"), _count(cli, "trades"))
    again = cli.json("reconcile", "--accept", *ARGS, env=KEYS)
    assert again["differences"] == 0 and again["realized_pnl"] == 0
    assert (_count(cli, "fills"), _count(cli, "orders"), _count(cli, "trades")) == booked  # nothing booked twice


def test_a_stop_filled_at_the_broker_is_a_stop_loss_and_a_silent_close_uses_the_market_price(
        cli, fake, monkeypatch):
    import threading

    from tokenomics.trading.loop import tick
    from tokenomics.trading.reconcile import reconcile
    from tokenomics.runtime import Options, Runtime

    write_config(cli, fake.url)  # in-process this time: the same code as the CLI, without its start-up
    monkeypatch.chdir(cli.cwd)
    for k in [k for k in os.environ if k.startswith("TOKENOMICS_")]:
        monkeypatch.delenv(k)
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    rt = Runtime(Options(config=cli.cwd / "paper.yaml", db=cli.cwd / "store.db"))
    try:
        fake.prices["MSFT"] = 400.0
        recent = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(timespec="seconds")
        fake.add_news(1, "Apple smashes earnings expectations", ["AAPL"], recent.replace("+00:00", "Z"))
        fake.add_news(2, "Microsoft wins a record cloud contract", ["MSFT"], recent.replace("+00:00", "Z"))
        tick(rt, 1, threading.Event())
        entries = {p["symbol"]: p for p in rt.store.positions()}
        assert set(entries) == {"AAPL", "MSFT"}
    finally:
        rt.close()
    fake.close_by_hand("AAPL", 194.5, order_type="stop")  # while tokenomics is down: the bracket's stop fires,
    del fake.positions["MSFT"]  # and MSFT is gone with no sell order to be found
    fake.prices["MSFT"] = 390.0
    rt = Runtime(Options(config=cli.cwd / "paper.yaml", db=cli.cwd / "store.db"))  # the next start
    try:
        rows = {r["symbol"]: r for r in reconcile(rt, accept=True)["rows"]}
        assert rows["AAPL"]["exit_price"] == 194.5 and rows["AAPL"]["price_source"].startswith("broker sell order")
        assert rows["MSFT"]["exit_price"] == 390.0 and rows["MSFT"]["price_source"].startswith("market price")
        for symbol, price, reason in (("AAPL", 194.5, "stop_loss"), ("MSFT", 390.0, "closed_at_broker")):
            trade, e = rt.store.one("SELECT * FROM trades WHERE symbol = ?", [symbol]), entries[symbol]
            assert trade["exit_reason"] == reason and trade["exit_price"] == price
            assert trade["pnl"] == pytest.approx(round((price - e["avg_price"]) * e["qty"] - e["fees"], 2), abs=0.005)
        assert rt.store.positions() == []
    finally:
        rt.close()
