"""The ccxt broker with the real ccxt (binance), markets set offline and HTTP replaced by canned JSON."""

from __future__ import annotations

import json

import responses

import pytest

from tokenomics.adapters.brokers.base import OrderRequest
from tokenomics.adapters.brokers.ccxt import CcxtBroker
from tokenomics.config import BrokerSettings
from tokenomics.core.errors import ProviderError
from tokenomics.keys import Key

MARKET = {
    "id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC", "quoteId": "USDT",
    "active": True, "type": "spot", "spot": True, "margin": False, "swap": False, "future": False, "option": False,
    "contract": False, "linear": None, "inverse": None, "contractSize": None, "settle": None, "settleId": None, "precision": {"amount": 0.00001, "price": 0.01},
    "limits": {"amount": {"min": 0.00001, "max": 9000}, "cost": {"min": 5.0, "max": None},
               "price": {"min": 0.01, "max": None}},
    "info": {"orderTypes": ["LIMIT", "MARKET"]}, "taker": 0.001, "maker": 0.001,
}


class Exchange:
    """Routes binance REST paths to canned answers and records what was sent."""

    def __init__(self, monkeypatch):
        import ccxt

        self.ex = ccxt.binance({"apiKey": "k" * 16, "secret": "s" * 16})
        self.ex.set_markets([MARKET])
        self.sent: list[tuple[str, str, str]] = []
        self.orders: list[dict] = []
        self.fail: Exception | None = None
        monkeypatch.setattr(self.ex, "fetch", self.fetch)

    def fetch(self, url, method="GET", headers=None, body=None):
        self.sent.append((method, url, body or ""))
        if "ticker/24hr" in url or "ticker/price" in url:
            return {"symbol": "BTCUSDT", "lastPrice": "95000.00", "closeTime": 1767225600000}
        if "/order" in url and method == "POST":
            if self.fail:
                raise self.fail
            q = dict(p.split("=") for p in (body or url.split("?", 1)[1]).split("&"))
            o = {"symbol": "BTCUSDT", "orderId": len(self.orders) + 1, "clientOrderId": q["newClientOrderId"],
                 "transactTime": 1767225600000, "price": "0", "origQty": q["quantity"], "executedQty": q["quantity"],
                 "cummulativeQuoteQty": str(float(q["quantity"]) * 95000), "status": "FILLED", "type": "MARKET",
                 "side": q["side"], "timeInForce": "GTC", "fills": []}
            self.orders.append(o)
            return o
        if "allOrders" in url:
            return self.orders
        if "/api/v3/account" in url:  # the balance a sell is checked against
            return {"accountType": "SPOT", "updateTime": 1767225600000, "canTrade": True,
                    "balances": [{"asset": "BTC", "free": "1.0", "locked": "0"},
                                 {"asset": "USDT", "free": "100000", "locked": "0"}]}
        if "klines" in url:
            return [[1767225600000, "1", "2", "0.5", "1.5", "10", 1767229199999, "15", 3, "1", "1", "0"]]
        raise AssertionError(f"unexpected request {method} {url}")


def broker(exchange: Exchange, store_symbol="BTC/USDT") -> CcxtBroker:
    return CcxtBroker(BrokerSettings(provider="ccxt"), Key("CCXT_API_KEY", "k"), Key("CCXT_SECRET", "s"), None,
                      sandbox=True, booked=lambda c: (0.0, 0.0), order_symbol=lambda c: store_symbol,
                      exchange=exchange.ex)


def test_market_order_rounded_to_precision_with_client_id(monkeypatch):
    x = Exchange(monkeypatch)
    upd = broker(x).submit(OrderRequest("tkn-1", "BTC/USDT", "buy", "crypto", notional=1000.0))
    body = [b for m, u, b in x.sent if m == "POST"][0]
    assert "newClientOrderId=tkn-1" in body and "quantity=0.01052" in body  # 1000/95000 floored to 1e-5
    assert upd.status == "filled" and upd.fills[0].qty == pytest.approx(0.01052)
    assert upd.fills[0].price == pytest.approx(95000)


def test_below_minimum_is_rejected_before_sending(monkeypatch):
    x = Exchange(monkeypatch)
    upd = broker(x).submit(OrderRequest("tkn-2", "BTC/USDT", "buy", "crypto", notional=3.0))
    assert upd.status == "rejected" and "minimum" in upd.error
    assert not [1 for m, _u, _b in x.sent if m == "POST"]


def test_insufficient_funds_and_invalid_order_are_rejections(monkeypatch):
    import ccxt

    x = Exchange(monkeypatch)
    x.fail = ccxt.InsufficientFunds("binance Account has insufficient balance")
    assert "insufficient funds" in broker(x).submit(OrderRequest("tkn-3", "BTC/USDT", "buy", "crypto",
                                                                 notional=100.0)).error
    x.fail = ccxt.InvalidOrder("binance Filter failure: LOT_SIZE")
    assert broker(x).submit(OrderRequest("tkn-4", "BTC/USDT", "sell", "crypto", qty=0.01)).status == "rejected"


def test_network_error_after_acceptance_finds_the_order(monkeypatch):
    import ccxt

    x = Exchange(monkeypatch)
    b = broker(x)
    b.submit(OrderRequest("tkn-5", "BTC/USDT", "buy", "crypto", notional=100.0))
    x.fail = ccxt.RequestTimeout("timed out")
    again = b.submit(OrderRequest("tkn-5", "BTC/USDT", "buy", "crypto", notional=100.0))
    assert again.status == "filled" and len(x.orders) == 1
    x.fail = ccxt.RequestTimeout("timed out")
    with pytest.raises(ProviderError, match="looked up"):
        b.submit(OrderRequest("tkn-6", "BTC/USDT", "buy", "crypto", notional=100.0))


def test_lookup_ticker_and_ohlcv(monkeypatch):
    x = Exchange(monkeypatch)
    b = broker(x)
    assert b.get_order("tkn-none") is None
    assert b.price("BTC/USDT") == 95000.0
    assert b.ohlcv("BTC/USDT", "1h", limit=1) == [[1767225600000, 1.0, 2.0, 0.5, 1.5, 10.0]]
    assert json.dumps(b.ohlcv("BTC/USDT", "1h", limit=1))


BINANCE = "https://testnet.binance.vision"


def binance_http():
    """ccxt's own HTTP (requests) answered by `responses`: binance's JSON and its error bodies."""
    import ccxt
    import responses

    ex = ccxt.binance({"apiKey": "k" * 16, "secret": "s" * 16})
    ex.set_sandbox_mode(True)
    ex.set_markets([MARKET])
    ex.options["fetchCurrencies"] = False
    return ex, responses.RequestsMock(assert_all_requests_are_fired=False)


def filled_order(coid: str, ts_ms: int = 1767225645993) -> dict:
    return {"symbol": "BTCUSDT", "orderId": 7, "clientOrderId": coid, "time": ts_ms - 500, "updateTime": ts_ms,
            "transactTime": ts_ms, "price": "0", "origQty": "0.00105", "executedQty": "0.00105",
            "cummulativeQuoteQty": "99.75", "status": "FILLED", "type": "MARKET", "side": "BUY",
            "timeInForce": "GTC", "fills": []}


def test_a_duplicate_order_answer_is_looked_up_not_rejected():
    import re

    import requests

    ex, rsps = binance_http()
    b = CcxtBroker(BrokerSettings(provider="ccxt"), Key("CCXT_API_KEY", "k"), Key("CCXT_SECRET", "s"), None,
                   sandbox=True, booked=lambda c: (0.0, 0.0), order_symbol=lambda c: "BTC/USDT", exchange=ex)
    with rsps:
        rsps.get(re.compile(r".*/api/v3/ticker/(24hr|price).*"), json={"symbol": "BTCUSDT", "lastPrice": "95000"})
        order = re.compile(r".*/api/v3/order(\?.*)?$")
        all_orders = re.compile(r".*/api/v3/allOrders.*")
        # run 1: the exchange takes the order but the answer is lost, and the look-up does not list it yet
        rsps.post(order, body=requests.ConnectionError("Connection reset by peer"))
        rsps.get(all_orders, json=[])
        with pytest.raises(ProviderError, match="looked up"):
            b.submit(OrderRequest("tkn-d", "BTC/USDT", "buy", "crypto", notional=100.0))
        # run 2: the resend is answered -2010 "Duplicate order sent."; the look-up still misses: stays pending
        rsps.replace(responses.POST, order, status=400, json={"code": -2010, "msg": "Duplicate order sent."})
        with pytest.raises(ProviderError) as err:
            b.submit(OrderRequest("tkn-d", "BTC/USDT", "buy", "crypto", notional=100.0))
        assert err.value.transient and "exists" in str(err.value)
        # run 3: the exchange lists it now: the duplicate answer leads to the filled order
        rsps.replace(responses.GET, all_orders, json=[filled_order("tkn-d")])
        upd = b.submit(OrderRequest("tkn-d", "BTC/USDT", "buy", "crypto", notional=100.0))
        assert len([c for c in rsps.calls if c.request.method == "POST"]) == 3
    assert upd.status == "filled" and upd.fills[0].qty == pytest.approx(0.00105)
    assert upd.fills[0].ts == "2026-01-01T00:00:45+00:00"  # normalised: UTC to the second, +00:00


def test_a_real_invalid_order_is_still_a_rejection_and_fill_times_are_normalised(monkeypatch):
    import ccxt

    x = Exchange(monkeypatch)
    x.fail = ccxt.InvalidOrder('binance {"code":-2010,"msg":"Account has insufficient balance for requested action."}')
    assert broker(x).submit(OrderRequest("tkn-r", "BTC/USDT", "buy", "crypto", notional=100.0)).status == "rejected"
    x.fail = None
    upd = broker(x).submit(OrderRequest("tkn-t", "BTC/USDT", "buy", "crypto", notional=100.0))
    assert upd.fills[0].ts == "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize("status", [429, 418])
def test_an_exchange_asking_to_wait_says_how_long(status):
    """Binance answers a request over its weight limit 429 (418 once it bans the address) with
    Retry-After in seconds: the error carries it, so the loop leaves the exchange's optional steps alone
    until then (provider_health.retry_until) rather than asking again on the next tick."""
    import re

    ex, rsps = binance_http()
    b = CcxtBroker(BrokerSettings(provider="ccxt"), Key("CCXT_API_KEY", "k"), Key("CCXT_SECRET", "s"), None,
                   sandbox=True, booked=lambda c: (0.0, 0.0), order_symbol=lambda c: "BTC/USDT", exchange=ex)
    with rsps:
        rsps.get(re.compile(r".*/api/v3/ticker/(24hr|price).*"), status=status, headers={"Retry-After": "120"},
                 json={"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight "
                                             "per 1 MINUTE. Please use WebSocket Streams for live updates."})
        with pytest.raises(ProviderError) as err:
            b.price("BTC/USDT")
    assert err.value.transient and err.value.retry_after == 120.0
    assert "rate limit" in str(err.value)


def test_the_public_price_source_says_how_long_too():
    import re

    from tokenomics.adapters.market.ccxt import CcxtPrices

    ex, rsps = binance_http()
    prices = CcxtPrices("binance", url=None, timeout=5, exchange=ex)
    with rsps:
        rsps.get(re.compile(r".*/api/v3/ticker/(24hr|price).*"), status=429, headers={"Retry-After": "30"},
                 json={"code": -1003, "msg": "Too many requests."})
        with pytest.raises(ProviderError) as err:
            prices._latest("BTC/USDT")
    assert err.value.transient and err.value.retry_after == 30.0
