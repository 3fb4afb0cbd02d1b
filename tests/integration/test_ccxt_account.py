"""The account on a ccxt exchange (the real ccxt binance, markets set offline, HTTP replaced by
canned JSON): rebalance weighs each pair's base balance at its ticker with the quote currency as
cash and reports other balances; reconcile --accept books a sale made on the exchange."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

from tests.integration.test_ccxt import MARKET
from tokenomics.trading import rebalance as rebalancer
from tokenomics.trading import orders
from tokenomics.adapters.brokers.base import Fill, OrderUpdate
from tokenomics.adapters.brokers.ccxt import CcxtBroker
from tokenomics.core.errors import ConfigError
from tokenomics.keys import Key
from tokenomics.trading.reconcile import reconcile
from tokenomics.runtime import Options, Runtime
from tokenomics.store import iso, parse_ts

PRICES = {"BTC/USDT": 95000.0, "ETH/USDT": 3000.0, "DOGE/USDT": 0.2}


def market(symbol: str) -> dict:
    base, quote = symbol.split("/")
    return {**MARKET, "id": base + quote, "symbol": symbol, "base": base, "baseId": base, "quote": quote,
            "quoteId": quote}


class Exchange:
    """Binance's account, ticker and trade-history endpoints, answered from dicts the test sets."""

    def __init__(self, monkeypatch):
        import ccxt

        self.ex = ccxt.binance({"apiKey": "k" * 16, "secret": "s" * 16})
        self.ex.set_markets([market(s) for s in PRICES])
        self.balances: dict[str, float] = {}
        self.trades: list[dict] = []  # binance myTrades rows
        monkeypatch.setattr(self.ex, "fetch", self.fetch)

    def fetch(self, url, method="GET", headers=None, body=None):
        q = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        if "/api/v3/account" in url:
            return {"accountType": "SPOT", "updateTime": 1767225600000, "canTrade": True,
                    "balances": [{"asset": a, "free": str(v), "locked": "0"} for a, v in self.balances.items()]}
        if "ticker/24hr" in url:
            sym = next(s for s in PRICES if s.replace("/", "") == q["symbol"])
            return {"symbol": q["symbol"], "lastPrice": str(PRICES[sym]), "closeTime": 1767225600000}
        if "myTrades" in url:
            return [t for t in self.trades if t["symbol"] == q["symbol"] and t["time"] >= int(q.get("startTime", 0))]
        raise AssertionError(f"unexpected request {method} {url}")


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ex.yaml").write_text("mode: paper\nuniverse: {equities: [], crypto: [BTC/USDT, ETH/USDT]}\n"
                                      "broker: {provider: ccxt, fee_bps: 10, slippage_bps: 5}\n")
    rt = Runtime(Options(config=tmp_path / "ex.yaml", db=tmp_path / "t.db"))
    x = Exchange(monkeypatch)
    rt.__dict__["broker"] = CcxtBroker(rt.settings.broker, Key("CCXT_API_KEY", "k"), Key("CCXT_SECRET", "s"), None,
                                       sandbox=True, booked=rt.booked, order_symbol=rt.order_symbol, exchange=x.ex)
    yield rt, x
    rt.close()


def test_allocation_is_base_balances_at_tickers_with_the_quote_as_cash(world):
    rt, x = world
    x.balances = {"BTC": 0.1, "ETH": 2.0, "USDT": 5000.0, "DOGE": 1000.0, "XYZ": 5.0, "LTC": 0.0}
    alloc = rebalancer.current_allocation(rt)
    equity = 5000.0 + 0.1 * 95000 + 2.0 * 3000  # USDT + the universe's base balances at their tickers
    assert alloc.source == "ccxt" and alloc.cash == 5000.0 and alloc.cash_currency == "USDT"
    assert alloc.qtys == {"BTC/USDT": 0.1, "ETH/USDT": 2.0}
    assert alloc.unmanaged == [{"symbol": "DOGE", "qty": 1000.0, "price": 0.2, "value": 200.0},
                               {"symbol": "XYZ", "qty": 5.0, "price": None, "value": None}]
    target = {"BTC/USDT": 0.5, "ETH/USDT": 0.5}
    plan = rebalancer.make_plan(rt, target, min_trade_usd=10, band=0.01, alloc=alloc)
    assert plan.equity == pytest.approx(equity)
    assert plan.current == pytest.approx({"BTC/USDT": 9500 / equity, "ETH/USDT": 6000 / equity})
    assert {t.symbol: t.side for t in plan.planned} == {"BTC/USDT": "buy", "ETH/USDT": "buy"}

    def gap(w):
        return sum(abs(w.get(s, 0.0) - target[s]) for s in target)

    assert gap(plan.after()) < gap(plan.current) / 10
    assert all("DOGE" not in t.symbol and "XYZ" not in t.symbol for t in plan.trades)


def test_pairs_with_different_quotes_cannot_be_weighed_together(world):
    rt, _x = world
    rt.settings.universe.crypto = ["BTC/USDT", "ETH/USD"]
    with pytest.raises(ConfigError, match="one quote currency"):
        rebalancer.current_allocation(rt)


def buy_btc(rt) -> str:
    """Book a filled entry of 0.1 BTC at 95,000 (fee 9.5); return its fill time."""
    order = orders.create_order(rt, signal_id="test:btc", symbol="BTC/USDT", side="buy", intent="entry",
                                reason="test", notional=9510.0)
    opened = iso(rt.now())
    orders.apply_update(rt, OrderUpdate(order["client_order_id"], "filled", "77",
                                        (Fill("f1", 0.1, 95000.0, 9.5, opened),), ""))
    return opened


def test_reconcile_accept_books_a_sale_on_the_exchange_with_its_fee(world):
    rt, x = world
    st = rt.store
    opened = buy_btc(rt)
    x.balances = {"BTC": 0.0, "USDT": 10000.0}
    t0 = int(parse_ts(opened).timestamp() * 1000)
    x.trades = [  # sold on the exchange's own screen in two parts, fee in USDT
        {"symbol": "BTCUSDT", "id": 1, "orderId": 901, "price": "96000", "qty": "0.04", "quoteQty": "3840",
         "commission": "3.84", "commissionAsset": "USDT", "time": t0 + 60_000, "isBuyer": False, "isMaker": False},
        {"symbol": "BTCUSDT", "id": 2, "orderId": 902, "price": "97000", "qty": "0.06", "quoteQty": "5820",
         "commission": "5.82", "commissionAsset": "USDT", "time": t0 + 120_000, "isBuyer": False, "isMaker": False},
        {"symbol": "BTCUSDT", "id": 0, "orderId": 900, "price": "90000", "qty": "0.5", "quoteQty": "45000",
         "commission": "45", "commissionAsset": "USDT", "time": t0 - 86_400_000, "isBuyer": False, "isMaker": False},
    ]
    out = reconcile(rt, accept=True)
    (row,) = out["rows"]
    assert row["exit_price"] == pytest.approx(96600.0) and row["price_source"] == "broker sell orders"
    trade = st.one("SELECT * FROM trades")
    pnl = round(0.04 * 96000 + 0.06 * 97000 - 3.84 - 5.82 - 0.1 * 95000 - 9.5, 2)
    assert trade["pnl"] == pytest.approx(pnl, abs=0.005) and trade["exit_reason"] == "closed_at_broker"
    assert st.cash(rt.settings.capital) == pytest.approx(rt.settings.capital + pnl, abs=0.005)
    assert json.loads(st.one("SELECT broker_view FROM reconcile_diffs")["broker_view"]) == 0
    assert reconcile(rt, accept=True)["differences"] == 0 and st.scalar("SELECT COUNT(*) FROM fills") == 2


def test_a_partial_sale_on_the_exchange_reduces_the_position_and_moves_the_cash(world):
    rt, x = world
    st = rt.store
    opened = buy_btc(rt)
    cash0 = st.cash(rt.settings.capital)
    x.balances = {"BTC": 0.04, "USDT": 10000.0}
    x.trades = [{"symbol": "BTCUSDT", "id": 2, "orderId": 902, "price": "97000", "qty": "0.06", "quoteQty": "5820",
                 "commission": "5.82", "commissionAsset": "USDT",
                 "time": int(parse_ts(opened).timestamp() * 1000) + 1000, "isBuyer": False, "isMaker": False}]
    seen = reconcile(rt)
    assert seen["rows"][0]["exit_price"] == 97000.0 and st.scalar("SELECT COUNT(*) FROM fills") == 1
    (row,) = reconcile(rt, accept=True)["rows"]
    assert row["closed"] is False and row["realized_pnl"] is None
    assert row["partial_gain"] == pytest.approx(0.06 * (97000 - 95000))  # kept on the position until it closes
    assert st.one("SELECT qty FROM positions")["qty"] == pytest.approx(0.04)
    assert st.cash(rt.settings.capital) == pytest.approx(cash0 + 0.06 * 97000 - 5.82, abs=0.005)
    assert st.scalar("SELECT COUNT(*) FROM trades") == 0
    assert reconcile(rt, accept=True)["differences"] == 0 and st.scalar("SELECT COUNT(*) FROM fills") == 2


def test_rebalance_on_an_exchange_weighs_the_crypto_pairs_only(world):
    from typer.testing import CliRunner

    from tokenomics.commands.rebalance import app
    from tokenomics.core.errors import UsageProblem

    rt, x = world
    rt.settings.universe.equities = ["AAPL"]  # configured for another broker: an exchange cannot hold it
    x.balances = {"BTC": 0.1, "USDT": 5000.0}
    bad = CliRunner().invoke(app, ["--symbols", "AAPL,BTC/USDT"], obj=rt)
    assert isinstance(bad.exception, UsageProblem) and "crypto pairs only" in str(bad.exception)
    rt.opts.json = True
    with rt.store.tx():  # daily closes of the pairs, as `fetch-bars --source ccxt` stores them
        rt.store.insert_ignore("bars", [
            {"source": "ccxt", "symbol": sym, "timeframe": "1d", "ts": f"2025-12-{d:02d}T00:00:00+00:00",
             "open": p * (1 + d / 100), "high": p * (1 + d / 100), "low": p * (1 + d / 100),
             "close": p * (1 + d / 100) * (1 + (-1) ** d / 50), "volume": 1.0}
            for sym, p in PRICES.items() for d in range(1, 29)])
    ok = CliRunner().invoke(app, ["--method", "equal"], obj=rt)
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    assert set(doc["target_weights"]) == {"BTC/USDT", "ETH/USDT"}
