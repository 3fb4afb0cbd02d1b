"""Paper trading on live prices (issue 15, item 3): mode paper with broker.provider paper keeps the book in
the store and fills at live prices, from a ccxt exchange's public ticker (no keys) or from Alpaca market
data, through the real CLI (`run --loop`) against loopback fakes; no fill at a stale or missing price."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from tests.fakes import ALPACA_KEY, ALPACA_SECRET, FakeExchange, FakeProviders

NO_KEYS = {k: "" for k in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "CCXT_API_KEY", "CCXT_SECRET", "CCXT_PASSWORD",
                           "GOOGLE_API_KEY", "GEMINI_API_KEY")}
ALPACA = {**NO_KEYS, "ALPACA_API_KEY": ALPACA_KEY, "ALPACA_SECRET_KEY": ALPACA_SECRET}


def recent(minutes: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat(timespec="seconds")


def write_news(cli, *articles: tuple[str, str, list[str]]) -> None:
    with (cli.cwd / "news.jsonl").open("a") as fh:
        for aid, headline, symbols in articles:
            fh.write(json.dumps({"id": aid, "headline": headline, "symbols": symbols, "created_at": recent(2)}) + "\n")


def ccxt_config(cli, url: str, extra: str = "") -> None:
    (cli.cwd / "live.yaml").write_text(f"""
mode: paper
universe: {{equities: [], crypto: [BTC/USDT]}}
news: {{provider: file, file: news.jsonl}}
broker: {{provider: paper, crypto_prices: ccxt, exchange: binance, exchange_url: "{url}", timeout_seconds: 5,
          slippage_bps: 5, fee_bps: 10}}
{extra}""")


def alpaca_config(cli, url: str) -> None:
    (cli.cwd / "live.yaml").write_text(f"""
mode: paper
universe: {{equities: [AAPL], crypto: [BTC/USD]}}
news: {{provider: file, file: news.jsonl}}
trading: {{market_hours_only: false}}
broker: {{provider: paper, data_url: "{url}", trading_url: "{url}", timeout_seconds: 5, slippage_bps: 5, fee_bps: 10}}
""")


ARGS = ("--mode", "paper", "--config", "live.yaml")


def loop(cli, ticks: int, env: dict) -> tuple[dict, list[dict]]:
    proc = cli("run", "--loop", "--ticks", str(ticks), "--interval", "0", *ARGS, "--jsonl", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    return rows[-1], rows


@pytest.fixture
def exchange():
    with FakeExchange({"BTC/USDT": 95000.0}) as x:
        yield x


def test_run_loop_fills_at_the_ccxt_public_ticker_without_any_key(cli, exchange):
    ccxt_config(cli, exchange.url)
    write_news(cli, ("n1", "Bitcoin soars as institutional demand hits record high", ["BTC/USDT"]))
    _last, rows = loop(cli, 3, NO_KEYS)
    assert [r["tick"] for r in rows] == [1, 2, 3]
    assert [o["symbol"] for r in rows for o in r.get("opened", [])] == ["BTC/USDT"]
    db = sqlite3.connect(cli.cwd / "store.db")
    price, qty, fee = db.execute("SELECT price, qty, fee FROM fills").fetchone()
    assert price == pytest.approx(95000.0 * 1.0005)  # the live price, 5 bps of slippage
    assert fee == pytest.approx(round(qty * price * 0.001, 2))  # 10 bps of fee
    assert db.execute("SELECT broker, status FROM orders").fetchall() == [("paper", "filled")]
    assert db.execute("SELECT COUNT(*) FROM paper_orders WHERE status = 'filled'").fetchone() == (1,)
    assert exchange.tickers_asked("BTC/USDT") >= 1  # priced live (a few seconds of cache within a tick)
    assert all(m == "GET" for m, _p, _h in exchange.requests)  # public data only: nothing sent to the exchange
    assert not any(k.lower() == "x-mbx-apikey" for _m, _p, h in exchange.requests for k in h)

    exchange.prices["BTC/USDT"] = 90000.0  # -5.3 %: the stop-loss (2.5 %) fires at the new live price
    _last, rows = loop(cli, 2, NO_KEYS)
    assert [c["reason"] for r in rows for c in r.get("closed", [])] == ["stop_loss"]
    sell = db.execute("SELECT price FROM fills WHERE side = 'sell'").fetchone()[0]
    assert sell == pytest.approx(90000.0 * 0.9995)
    assert db.execute("SELECT COUNT(*) FROM positions").fetchone() == (0,)
    status = cli.json("status", *ARGS, env=NO_KEYS)
    assert status["cash"] == pytest.approx(db.execute("SELECT 10000 + SUM(cash_flow) FROM fills").fetchone()[0])


def test_no_fill_at_a_stale_ticker_and_the_order_fills_once_when_it_is_fresh(cli, exchange):
    ccxt_config(cli, exchange.url, "")
    write_news(cli, ("n1", "Bitcoin soars as institutional demand hits record high", ["BTC/USDT"]))
    exchange.age["BTC/USDT"] = 3600  # the last trade is an hour old: no fill at that price
    _last, rows = loop(cli, 2, NO_KEYS)
    assert not any(r.get("opened") for r in rows) and "trade" in rows[0]["failed"]
    db = sqlite3.connect(cli.cwd / "store.db")
    assert db.execute("SELECT COUNT(*) FROM fills").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM paper_orders").fetchone() == (0,)
    (error,) = db.execute("SELECT last_error FROM provider_health WHERE provider = 'market data (ccxt binance)'"
                          ).fetchone()
    assert "stale" in error and "max_price_age_seconds" in error
    exchange.age["BTC/USDT"] = 1
    exchange.prices["BTC/USDT"] = 96000.0
    _last, rows = loop(cli, 1, NO_KEYS)
    assert db.execute("SELECT COUNT(*), MAX(price) FROM fills").fetchone() == (1, pytest.approx(96000.0 * 1.0005))
    assert db.execute("SELECT COUNT(*) FROM orders").fetchone() == (1,)  # the same order, sent once it could fill


def test_a_failing_ticker_fails_the_step_and_the_loop_goes_on(cli, exchange):
    ccxt_config(cli, exchange.url)
    write_news(cli, ("n1", "Bitcoin soars as institutional demand hits record high", ["BTC/USDT"]))
    exchange.faults["/api/v3/ticker/24hr"] = [503] * 20
    _last, rows = loop(cli, 2, NO_KEYS)
    assert len(rows) == 2 and "trade" in rows[0]["failed"] and not any(r.get("opened") for r in rows)
    db = sqlite3.connect(cli.cwd / "store.db")
    assert db.execute("SELECT COUNT(*) FROM fills").fetchone() == (0,)
    (error,) = db.execute("SELECT last_error FROM provider_health WHERE provider = 'market data (ccxt binance)'"
                          ).fetchone()
    assert "ccxt binance ticker BTC/USDT" in error and "Internal error" in error
    exchange.faults.clear()  # the exchange answers again: the pending order fills, once
    loop(cli, 1, NO_KEYS)
    assert db.execute("SELECT COUNT(*), MAX(price) FROM fills").fetchone() == (1, pytest.approx(95000.0 * 1.0005))
    assert db.execute("SELECT COUNT(*), MAX(status) FROM orders").fetchone() == (1, "filled")


def test_run_loop_fills_equities_and_crypto_at_alpaca_latest_trades(cli):
    with FakeProviders() as fake:
        alpaca_config(cli, fake.url)
        write_news(cli, ("n1", "Apple raises full-year guidance after record iPhone sales", ["AAPL"]),
                   ("n2", "Bitcoin soars as institutional demand hits record high", ["BTC/USD"]))
        _last, rows = loop(cli, 2, ALPACA)
        assert sorted(o["symbol"] for r in rows for o in r.get("opened", [])) == ["AAPL", "BTC/USD"]
        assert fake.posts == [] and not any(p.startswith("/v2/orders") for _m, p in fake.requests)  # book in the store
        assert ("GET", "/v2/stocks/trades/latest") in fake.requests
        assert ("GET", "/v1beta3/crypto/us/latest/trades") in fake.requests
        db = sqlite3.connect(cli.cwd / "store.db")
        prices = dict(db.execute("SELECT symbol, price FROM fills").fetchall())
        assert prices == {"AAPL": pytest.approx(200.0 * 1.0005), "BTC/USD": pytest.approx(95000.0 * 1.0005)}

        fake.down["/v1beta3/crypto"] = 503  # crypto prices fail: no crypto fill, AAPL goes on being marked
        _last, rows = loop(cli, 1, ALPACA)
        assert len(rows) == 1
        health = dict(db.execute("SELECT provider, status FROM provider_health").fetchall())
        assert health.get("market data (alpaca)") == "failing"


def test_no_fill_at_a_stale_alpaca_trade(cli):
    with FakeProviders() as fake:
        alpaca_config(cli, fake.url)
        write_news(cli, ("n1", "Apple raises full-year guidance after record iPhone sales", ["AAPL"]))
        fake.trade_age["AAPL"] = 1800  # a halted stock: its last trade is half an hour old
        _last, rows = loop(cli, 1, ALPACA)
        assert "trade" in rows[0]["failed"]
        db = sqlite3.connect(cli.cwd / "store.db")
        assert db.execute("SELECT COUNT(*) FROM fills").fetchone() == (0,)
        (error,) = db.execute("SELECT last_error FROM provider_health WHERE provider = 'market data (alpaca)'"
                              ).fetchone()
        assert "alpaca market data AAPL" in error and "stale price" in error
        fake.trade_age.clear()
        fake.prices["AAPL"] = 201.0
        loop(cli, 1, ALPACA)
        assert db.execute("SELECT COUNT(*), MAX(price) FROM fills").fetchone() == (1, pytest.approx(201.0 * 1.0005))


def test_live_mode_still_refuses_the_store_paper_broker(cli):
    (cli.cwd / "live-paper.yaml").write_text("mode: live\ntrading: {paper: false}\nbroker: {provider: paper}\n")
    proc = cli("run", "--once", "--mode", "live", "--live", "--config", "live-paper.yaml", env=ALPACA)
    assert proc.returncode == 2 and "broker.provider" in proc.stderr and "--mode paper" in proc.stderr


def test_alpaca_prices_need_the_alpaca_keys_named_before_any_request(cli):
    with FakeProviders() as fake:
        alpaca_config(cli, fake.url)
        write_news(cli, ("n1", "Apple raises full-year guidance after record iPhone sales", ["AAPL"]))
        proc = cli("run", "--loop", "--ticks", "2", "--interval", "0", *ARGS, env=NO_KEYS)
        assert proc.returncode == 2 and "ALPACA_API_KEY" in proc.stderr and "ALPACA_SECRET_KEY" in proc.stderr
        assert "broker.crypto_prices" in proc.stderr or "market data" in proc.stderr
        assert fake.requests == []


def test_ccxt_prices_for_equities_still_need_alpaca(cli, exchange):
    ccxt_config(cli, exchange.url)
    cfg = (cli.cwd / "live.yaml").read_text().replace("equities: []", "equities: [AAPL]")
    (cli.cwd / "live.yaml").write_text(cfg)
    write_news(cli, ("n1", "Apple raises full-year guidance after record iPhone sales", ["AAPL"]))
    proc = cli("run", "--once", *ARGS, env=NO_KEYS)
    assert proc.returncode == 2 and "ALPACA_API_KEY" in proc.stderr and "equities" in proc.stderr
    assert exchange.requests == []


def test_doctor_reports_the_price_source(cli, exchange):
    ccxt_config(cli, exchange.url)
    proc = cli("doctor", *ARGS, "--json", env=NO_KEYS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"]}
    detail = checks["prices"]["detail"]
    assert checks["prices"]["ok"] and "ccxt binance" in detail and "public ticker" in detail and "95000" in detail
    assert "alpaca keys" not in checks and "ccxt keys" not in checks  # no key needed
    with FakeProviders() as fake:
        alpaca_config(cli, fake.url)
        proc = cli("doctor", *ARGS, "--json", env=ALPACA)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"]}
        assert checks["alpaca keys"]["ok"] and "alpaca" in checks["prices"]["detail"]
        assert "AAPL" in checks["prices"]["detail"] and "BTC/USD" in checks["prices"]["detail"]
        bad = cli("doctor", *ARGS, "--json", env=NO_KEYS)
        assert bad.returncode == 1
        checks = {c["check"]: c for c in json.loads(bad.stdout)["checks"]}
        assert not checks["alpaca keys"]["ok"] and not checks["prices"]["ok"]


def test_crypto_prices_is_checked(cli):
    (cli.cwd / "bad.yaml").write_text("mode: paper\nbroker: {provider: paper, crypto_prices: kraken}\n")
    proc = cli("run", "--once", "--mode", "paper", "--config", "bad.yaml")
    assert proc.returncode == 2 and "broker.crypto_prices" in proc.stderr


def test_a_pair_the_exchange_does_not_list_exits_2_naming_the_universe(cli, exchange):
    ccxt_config(cli, exchange.url)
    cfg = (cli.cwd / "live.yaml").read_text().replace("crypto: [BTC/USDT]", "crypto: [BTC/USD]")
    (cli.cwd / "live.yaml").write_text(cfg)
    write_news(cli, ("n1", "Bitcoin soars as institutional demand hits record high", ["BTC/USD"]))
    proc = cli("run", "--loop", "--ticks", "3", "--interval", "0", *ARGS, env=NO_KEYS)
    assert proc.returncode == 2 and "universe.crypto" in proc.stderr and "BTC/USD" in proc.stderr
    assert exchange.tickers_asked() == 0


def test_equities_from_alpaca_and_crypto_from_the_exchange_in_one_loop(cli, exchange):
    with FakeProviders() as fake:
        (cli.cwd / "live.yaml").write_text(f"""
mode: paper
universe: {{equities: [AAPL], crypto: [BTC/USDT]}}
news: {{provider: file, file: news.jsonl}}
trading: {{market_hours_only: false}}
broker: {{provider: paper, data_url: "{fake.url}", crypto_prices: ccxt, exchange_url: "{exchange.url}"}}
""")
        write_news(cli, ("n1", "Apple raises full-year guidance after record iPhone sales", ["AAPL"]),
                   ("n2", "Bitcoin soars as institutional demand hits record high", ["BTC/USDT"]))
        _last, rows = loop(cli, 2, ALPACA)
        assert sorted(o["symbol"] for r in rows for o in r.get("opened", [])) == ["AAPL", "BTC/USDT"]
        assert {p for _m, p in fake.requests} == {"/v2/stocks/trades/latest"}  # no crypto asked of Alpaca
        assert exchange.tickers_asked("BTC/USDT") >= 1
        db = sqlite3.connect(cli.cwd / "store.db")
        prices = dict(db.execute("SELECT symbol, price FROM fills").fetchall())
        assert prices == {"AAPL": pytest.approx(200.0 * 1.0005), "BTC/USDT": pytest.approx(95000.0 * 1.0005)}



def test_paper_fills_keep_the_exchanges_lot_step(cli, exchange):
    """The paper book should take only what the exchange would: Binance's BTC/USDT trades in steps of
    0.00001 BTC (its LOT_SIZE filter)."""
    ccxt_config(cli, exchange.url)
    write_news(cli, ("n1", "Bitcoin soars as institutional demand hits record high", ["BTC/USDT"]))
    loop(cli, 2, NO_KEYS)
    db = sqlite3.connect(cli.cwd / "store.db")
    qty = db.execute("SELECT qty FROM fills ORDER BY rowid").fetchone()[0]
    assert qty > 0 and abs(qty / 0.00001 - round(qty / 0.00001)) < 1e-6  # a whole number of steps


def test_paper_refuses_an_order_under_the_exchanges_minimum(cli, exchange):
    """Binance refuses an order worth under 5 USDT (its NOTIONAL filter): so does the paper book."""
    ccxt_config(cli, exchange.url, extra="sizing: {method: fixed, min_usd: 1, max_usd: 3}\n")
    write_news(cli, ("n1", "Bitcoin soars as institutional demand hits record high", ["BTC/USDT"]))
    loop(cli, 2, NO_KEYS)
    db = sqlite3.connect(cli.cwd / "store.db")
    assert db.execute("SELECT COUNT(*) FROM fills").fetchone() == (0,)
    ((status, error),) = db.execute("SELECT status, error FROM orders").fetchall()
    assert status == "rejected" and "minimum" in error and "5" in error
