"""Fees taken in the coin (Binance's default) through the real ccxt binance, its HTTP answered by a
fake exchange that keeps balances: the position is what the exchange holds after the fee, reconcile
finds no difference, and the exit sells the free balance rounded down to the market's step."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.integration.test_ccxt_account import market
from tokenomics.adapters.brokers.ccxt import CcxtBroker
from tokenomics.keys import Key
from tokenomics.runtime import Options, Runtime
from tokenomics.store import iso
from tokenomics.trading import exits, orders
from tokenomics.trading.reconcile import reconcile


class Exchange:
    """Binance spot: market orders fill at the ticker, the commission is taken from the asset received
    (BTC on a buy, USDT on a sell) at `fee_rate`, balances follow."""

    def __init__(self, monkeypatch, fee_rate: float = 0.001):
        import ccxt

        self.ex = ccxt.binance({"apiKey": "k" * 16, "secret": "s" * 16})
        self.ex.set_markets([market("BTC/USDT")])
        self.price, self.fee_rate = 95000.0, fee_rate
        self.balances = {"USDT": 10000.0}
        self.orders: list[dict] = []
        self.fail_next: list[Exception] = []
        monkeypatch.setattr(self.ex, "fetch", self.fetch)

    def fetch(self, url, method="GET", headers=None, body=None):
        q = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        if "/api/v3/account" in url:
            return {"accountType": "SPOT", "updateTime": 1767225600000, "canTrade": True,
                    "balances": [{"asset": a, "free": f"{v:.8f}", "locked": "0"} for a, v in self.balances.items()]}
        if "ticker/24hr" in url:
            return {"symbol": "BTCUSDT", "lastPrice": str(self.price), "closeTime": 1767225600000}
        if "/order" in url and method == "POST":
            if self.fail_next:
                raise self.fail_next.pop(0)
            p = {k: v[0] for k, v in parse_qs(body or urlparse(url).query).items()}
            qty = float(p["quantity"])
            if p["side"] == "SELL" and qty > self.balances.get("BTC", 0.0) + 1e-12:
                import ccxt
                raise ccxt.InsufficientFunds("binance Account has insufficient balance for requested action.")
            if p["side"] == "BUY":
                fee, asset = round(qty * self.fee_rate, 8), "BTC"
                self.balances["BTC"] = round(self.balances.get("BTC", 0.0) + qty - fee, 8)
                self.balances["USDT"] = round(self.balances["USDT"] - qty * self.price, 8)
            else:
                fee, asset = round(qty * self.price * self.fee_rate, 8), "USDT"
                self.balances["BTC"] = round(self.balances["BTC"] - qty, 8)
                self.balances["USDT"] = round(self.balances["USDT"] + qty * self.price - fee, 8)
            o = {"symbol": "BTCUSDT", "orderId": len(self.orders) + 1, "clientOrderId": p["newClientOrderId"],
                 "transactTime": 1767225600000, "price": "0", "origQty": p["quantity"], "executedQty": p["quantity"],
                 "cummulativeQuoteQty": f"{qty * self.price:.8f}", "status": "FILLED", "type": "MARKET",
                 "side": p["side"], "timeInForce": "GTC",
                 "fills": [{"price": str(self.price), "qty": p["quantity"], "commission": f"{fee:.8f}",
                            "commissionAsset": asset, "tradeId": len(self.orders) + 1}]}
            self.orders.append(o)
            return o
        if "allOrders" in url:
            return [o for o in self.orders if o["symbol"] == q.get("symbol")]
        if "myTrades" in url:
            return []
        raise AssertionError(f"unexpected request {method} {url}")


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ex.yaml").write_text("mode: paper\nuniverse: {equities: [], crypto: [BTC/USDT]}\n"
                                      "broker: {provider: ccxt}\nrisk: {max_position_pct: 20}\n")
    rt = Runtime(Options(config=tmp_path / "ex.yaml", db=tmp_path / "t.db"))
    x = Exchange(monkeypatch)
    rt.__dict__["broker"] = CcxtBroker(rt.settings.broker, Key("CCXT_API_KEY", "k"), Key("CCXT_SECRET", "s"), None,
                                       sandbox=True, booked=rt.booked, order_symbol=rt.order_symbol, exchange=x.ex)
    yield rt, x
    rt.close()


def buy(rt, notional: float = 1000.0) -> str:
    sid, now = "sentiment:test:BTC/USDT", iso(rt.now())
    with rt.store.tx():
        rt.store.db["signals"].insert({
            "id": sid, "symbol": "BTC/USDT", "side": "buy", "source": "sentiment", "strength": 0.9, "reason": "t",
            "ref": "test", "asset_class": "crypto", "created_at": now, "status": "sized", "status_reason": "accept",
            "size_method": "fixed", "notional": notional, "updated_at": now})
    assert orders.trade(rt)["filled"] == 1
    return orders.client_order_id(sid)


def test_a_fee_in_the_coin_leaves_the_position_equal_to_the_exchange_balance(world):
    rt, x = world
    entry = buy(rt)
    (pos,) = rt.store.positions()
    assert pos["qty"] == pytest.approx(x.balances["BTC"], abs=1e-12)  # 0.01052 bought, 0.00001052 of it the fee
    fill = rt.store.one("SELECT * FROM fills WHERE client_order_id = ?", [entry])
    assert fill["qty"] == pytest.approx(0.01052) and fill["fee_currency"] == "BTC"
    assert fill["fee"] == pytest.approx(0.00001052)
    assert rt.store.cash(rt.settings.capital) == pytest.approx(rt.settings.capital - 0.01052 * 95000, abs=0.01)
    assert pos["cost"] == pytest.approx(0.01052 * 95000, abs=0.01)  # the fee's value stays in the cost
    assert reconcile(rt)["differences"] == 0
    assert not orders.trade(rt).get("blocked_by_reconcile")


def test_the_exit_sells_the_free_balance_rounded_down_and_books_the_round_trip(world):
    rt, x = world
    buy(rt)
    x.price = 90000.0
    out = exits.check_exits(rt)
    assert out["exits"] == 1, out
    sold = float(x.orders[-1]["origQty"])
    assert sold == pytest.approx(0.0105) and sold <= x.balances["BTC"] + sold  # floor(0.01050948) to 1e-5
    assert rt.store.positions() == []  # the dust below the market's step is not a position
    trade = rt.store.one("SELECT * FROM trades")
    cash = rt.store.cash(rt.settings.capital)
    assert trade["pnl"] == pytest.approx(cash - rt.settings.capital, abs=0.01)  # every fill's cash flow
    assert reconcile(rt)["differences"] == 0  # the dust left on the exchange is not a difference


def test_an_exit_rejected_for_insufficient_balance_is_retried(world):
    import ccxt

    rt, x = world
    buy(rt)
    x.price = 90000.0
    x.fail_next = [ccxt.InsufficientFunds("binance Account has insufficient balance for requested action.")]
    assert exits.check_exits(rt)["exits"] == 0
    assert exits.check_exits(rt)["exits"] == 1 and rt.store.positions() == []
