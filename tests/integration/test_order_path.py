"""The order path in-process: a crash between the broker's fill and our bookkeeping heals without a
second order; the trading lock keeps a second trader out; halts stop entries with their rule."""

from datetime import timedelta

import pytest

from tokenomics.trading import account, exits, orders
from tokenomics.adapters.brokers.base import OrderRequest
from tokenomics.runtime import Options, Runtime
from tokenomics.store import LockBusy, iso


def sized_signal(rt, symbol="BTC/USD", notional=750.0, sid="sentiment:test:BTC/USD"):
    now = iso(rt.now())
    with rt.store.tx():
        rt.store.db["signals"].insert({
            "id": sid, "symbol": symbol, "side": "buy", "source": "sentiment", "strength": 0.9, "reason": "t",
            "ref": "test", "asset_class": rt.asset_class(symbol), "created_at": now, "status": "sized",
            "status_reason": "accept", "size_method": "fixed", "notional": notional, "updated_at": now,
        })
    return sid


def test_crash_after_broker_fill_is_healed_by_lookup(rt):
    sid = sized_signal(rt)
    order = orders.create_order(rt, signal_id=sid, symbol="BTC/USD", side="buy", intent="entry",
                                reason="sentiment", notional=750.0)
    # the broker fills it, then the process "dies" before booking the fill
    rt.broker.submit(OrderRequest(order["client_order_id"], "BTC/USD", "buy", "crypto", notional=750.0))
    assert rt.store.scalar("SELECT status FROM orders") == "pending"
    out = orders.trade(rt)
    assert out["orders"] == 1 and out["filled"] == 1
    assert rt.store.scalar("SELECT COUNT(*) FROM paper_orders") == 1  # no second order
    pos = rt.store.positions()
    assert [p["symbol"] for p in pos] == ["BTC/USD"]
    assert orders.trade(rt)["orders"] == 0
    assert rt.store.cash(rt.settings.capital) == rt.broker.cash()


def test_create_order_is_once_per_signal(rt):
    sid = sized_signal(rt)
    first = orders.create_order(rt, signal_id=sid, symbol="BTC/USD", side="buy", intent="entry",
                                reason="sentiment", notional=750.0)
    second = orders.create_order(rt, signal_id=sid, symbol="BTC/USD", side="buy", intent="entry",
                                 reason="sentiment", notional=750.0)
    assert first is not None and second is None
    assert orders.client_order_id(sid) == first["client_order_id"] and len(first["client_order_id"]) <= 128


def test_second_trader_is_locked_out(rt):
    other = Runtime(Options(db=rt.db_path))
    with rt.store.trade_lock():
        with pytest.raises(LockBusy):
            with other.store.trade_lock(timeout=0.2):
                pass
    other.close()


def test_daily_loss_halt_rejects_entries_and_names_the_rule(rt):
    now = rt.now()
    with rt.store.tx():
        rt.store.execute("INSERT INTO equity VALUES (?, 10000, 0, 10000)", [iso(now - timedelta(hours=1))])
        rt.store.execute("INSERT INTO fills(id, client_order_id, symbol, side, qty, price, fee, cash_flow, ts) VALUES ('x', 'x', 'AAPL', 'buy', 0, 0, 0, -400, ?)", [iso(now)])
    account.mark_to_market(rt)
    assert [h["rule"] for h in account.active_halts(rt)] == ["daily_loss_limit"]
    sized_signal(rt)
    out = orders.trade(rt)
    assert out["orders"] == 0 and out["rejected"] == 1
    assert rt.store.scalar("SELECT rule FROM risk_decisions WHERE stage = 'trade'") == "daily_loss_limit"
    # the halt lifts when the day rolls
    rt.advance(48)
    assert account.active_halts(rt) == []


def test_exit_sells_the_whole_position_and_books_a_trade(rt):
    sid = sized_signal(rt)
    orders.trade(rt)
    with rt.store.tx():  # make the position look like it fell 10 %
        rt.store.execute("UPDATE positions SET avg_price = avg_price * 1.12")
    out = exits.check_exits(rt)
    assert out["exits"] == 1
    trade = rt.store.one("SELECT * FROM trades")
    assert trade["exit_reason"] == "stop_loss" and trade["entry_order_id"] == orders.client_order_id(sid)
    assert rt.store.positions() == []
    assert exits.check_exits(rt)["exits"] == 0


def test_a_position_sold_in_parts_books_one_trade_with_every_part(rt):
    sid = sized_signal(rt, notional=1000.0)
    buy = orders.create_order(rt, signal_id=sid, symbol="BTC/USD", side="buy", intent="entry",
                              reason="sentiment", notional=1000.0)
    orders.send(rt, buy)
    bought = rt.store.positions()[0]["qty"]
    rt.advance(3)
    trim = orders.create_order(rt, signal_id="rebalance:t:BTC/USD", symbol="BTC/USD", side="sell", intent="exit",
                               reason="rebalance", qty=round(bought / 3, 8))
    orders.send(rt, trim)
    assert rt.store.scalar("SELECT COUNT(*) FROM trades") == 0  # still open: no trade yet...
    partial = rt.store.positions()[0]["realized_partial"]
    assert partial != 0 and rt.store.realized_pnl() == partial  # ...but the trimmed part's gain is realized
    rt.advance(3)
    rest = rt.store.positions()[0]["qty"]
    close = orders.create_order(rt, signal_id="exit:t:BTC/USD", symbol="BTC/USD", side="sell", intent="exit",
                                reason="take_profit", qty=rest)
    orders.send(rt, close)
    (trade,) = rt.store.all("SELECT * FROM trades")
    assert trade["qty"] == pytest.approx(bought)
    cash = rt.store.cash(rt.settings.capital)
    assert trade["pnl"] == pytest.approx(cash - rt.settings.capital, abs=0.005)  # every fill's cash flow
    assert rt.store.realized_pnl() == trade["pnl"] and rt.store.positions() == []
    sells = rt.store.all("SELECT qty, price FROM fills WHERE side = 'sell'")
    assert trade["exit_price"] * bought == pytest.approx(sum(f["qty"] * f["price"] for f in sells), abs=0.01)
