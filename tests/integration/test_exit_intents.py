"""Exits against a broker that behaves like Alpaca (the real alpaca-py against the loopback fake):
an exit is an intent with attempts, each with its own client_order_id, retried until it fills for the
quantity held; bracket legs are our own orders (a leg's fill is the position's exit, booked with the
broker's price); a local exit cancels the legs first; a late fill never wedges the store."""

from __future__ import annotations

import threading

import pytest

from tests.fakes import ALPACA_KEY, ALPACA_SECRET
from tokenomics.runtime import Options, Runtime
from tokenomics.store import iso
from tokenomics.trading import exits, explain, loop, orders, reconcile


@pytest.fixture
def rt(tmp_path, monkeypatch, fake):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALPACA_API_KEY", ALPACA_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", ALPACA_SECRET)
    (tmp_path / "paper.yaml").write_text(f"""
mode: paper
universe: {{equities: [AAPL], crypto: [BTC/USD]}}
broker: {{provider: alpaca, trading_url: "{fake.url}", data_url: "{fake.url}", timeout_seconds: 5}}
risk: {{max_position_pct: 20}}
""")
    r = Runtime(Options(config=tmp_path / "paper.yaml", db=tmp_path / "t.db"))
    r.market_data.ttl = 0  # every price read asks the fake (tests move prices between calls)
    yield r
    r.close()


def buy(rt, symbol: str, notional: float = 1900.0) -> str:
    sid = f"sentiment:test:{symbol}"
    now = iso(rt.now())
    with rt.store.tx():
        rt.store.db["signals"].insert({
            "id": sid, "symbol": symbol, "side": "buy", "source": "sentiment", "strength": 0.9, "reason": "t",
            "ref": "test", "asset_class": rt.asset_class(symbol), "created_at": now, "status": "sized",
            "status_reason": "accept", "size_method": "fixed", "notional": notional, "updated_at": now})
    out = orders.trade(rt)
    assert out["orders"] == 1, out
    return orders.client_order_id(sid)


def sells(fake, symbol: str) -> list[dict]:
    return [p for p in fake.posts if p["side"] == "sell" and p["symbol"] == symbol]


def test_a_rejected_exit_is_retried_with_a_new_id_until_it_fills(rt, fake):
    entry = buy(rt, "BTC/USD")
    fake.prices["BTC/USD"] = 90000.0  # through the 2.5 % stop
    fake.faults["POST /v2/orders"] = [403]  # the broker refuses the first exit
    first = exits.check_exits(rt)
    assert first["exits"] == 0 and first["rows"][-1]["status"] == "rejected"
    assert len(rt.store.positions()) == 1
    second = exits.check_exits(rt)  # the next check sends a new attempt, with its own id
    assert second["exits"] == 1
    tried = rt.store.all("SELECT client_order_id, status FROM orders WHERE intent = 'exit' ORDER BY rowid")
    assert [o["status"] for o in tried] == ["rejected", "filled"]
    ids = [o["client_order_id"] for o in tried]
    assert len(set(ids)) == 2 and all(len(i) <= 128 for i in ids)
    assert [p["client_order_id"] for p in sells(fake, "BTC/USD")] == ids[1:]
    trade = rt.store.one("SELECT * FROM trades")
    assert trade["entry_order_id"] == entry and trade["exit_reason"] == "stop_loss"
    assert trade["exit_order_id"] == ids[1]
    assert rt.store.positions() == [] and fake.positions.get("BTC/USD", 0.0) == pytest.approx(0.0)
    assert exits.check_exits(rt)["rows"] == [] and len(sells(fake, "BTC/USD")) == 1  # never sold twice


def test_an_expired_exit_is_followed_by_a_new_attempt(rt, fake):
    buy(rt, "BTC/USD")
    fake.prices["BTC/USD"] = 90000.0
    fake.fill_mode = "new"  # the exit rests at the broker...
    exits.check_exits(rt)
    (first,) = sells(fake, "BTC/USD")
    assert exits.check_exits(rt)["rows"][0]["status"] == "submitted"  # still working: no second order
    assert len(sells(fake, "BTC/USD")) == 1
    fake.expire(first["client_order_id"])  # ...and expires unfilled
    fake.fill_mode = "fill"
    out = exits.check_exits(rt)
    assert out["exits"] == 1 and len(sells(fake, "BTC/USD")) == 2
    assert rt.store.positions() == []


def test_partial_entry_exit_late_entry_fill_second_exit(rt, fake):
    entry = buy_partial = None
    fake.fill_mode = "partial"
    entry = buy(rt, "BTC/USD", notional=1900.0)  # 0.02 BTC asked, 0.01 filled so far
    assert rt.store.positions()[0]["qty"] == pytest.approx(0.01)
    fake.fill_mode = "fill"
    fake.prices["BTC/USD"] = 90000.0
    assert exits.check_exits(rt)["exits"] == 1  # sells the 0.01 held
    assert rt.store.positions() == []
    fake.fill(entry)  # the rest of the entry fills after the exit
    out = exits.check_exits(rt)  # books the late fill and exits it: a second attempt of the same intent
    assert out["exits"] == 1 and rt.store.positions() == []
    assert [float(p["qty"]) for p in sells(fake, "BTC/USD")] == pytest.approx([0.01, 0.01])
    assert fake.positions.get("BTC/USD", 0.0) == pytest.approx(0.0)
    (trade,) = rt.store.all("SELECT * FROM trades")  # one round trip: every unit bought, every fill's cash
    assert trade["entry_order_id"] == entry and trade["qty"] == pytest.approx(0.02)
    assert trade["pnl"] == pytest.approx(rt.store.cash(rt.settings.capital) - rt.settings.capital, abs=0.01)
    assert rt.store.realized_pnl() == pytest.approx(trade["pnl"])
    del buy_partial


def test_a_bracket_stop_filled_at_the_broker_is_booked_as_the_exit_without_a_human(rt, fake):
    entry = buy(rt, "AAPL", notional=1000.0)  # 5 shares, bracket: take-profit 212, stop 195
    legs = rt.store.all("SELECT * FROM orders WHERE intent = 'exit' ORDER BY reason")
    assert [(o["reason"], o["status"]) for o in legs] == [("stop_loss", "submitted"), ("take_profit", "submitted")]
    fake.fill_leg(entry, "stop", 194.5)
    fake.prices["AAPL"] = 194.0
    rec = reconcile.reconcile(rt)  # what every tick does first in paper/live
    assert rec["differences"] == 0
    trade = rt.store.one("SELECT * FROM trades")
    assert trade["exit_reason"] == "stop_loss" and trade["exit_price"] == pytest.approx(194.5)
    assert trade["pnl"] == pytest.approx(5 * (194.5 - 200.0), abs=0.01)
    assert rt.store.positions() == []
    assert exits.check_exits(rt)["rows"] == [] and sells(fake, "AAPL") == []  # nothing sold again
    assert not orders.trade(rt).get("blocked_by_reconcile")  # entries are not blocked
    doc = explain.explain(rt, entry)
    assert doc["state"] == "closed" and doc["exit"]["order"]["reason"] == "stop_loss"
    assert doc["exit"]["order"]["client_order_id"] == trade["exit_order_id"]
    assert doc["exit"]["closed_by"] == "bracket stop-loss leg"


def test_a_local_exit_cancels_the_legs_first_and_never_gets_insufficient_qty(rt, fake):
    entry = buy(rt, "AAPL", notional=1000.0)
    pos = rt.store.positions()[0]
    with rt.store.tx():  # bearish news since entry: a local exit the legs know nothing of
        rt.store.db["scores"].insert({"article_id": "a1", "symbol": "AAPL", "scorer": "t", "sentiment": "bearish",
                                      "conviction": 90, "reason": "r", "scored_at": pos["opened_at"],
                                      "article_created_at": pos["opened_at"]})
    out = exits.check_exits(rt)
    assert out["exits"] == 1, out
    assert [m for m, p in fake.requests if m == "DELETE"] == ["DELETE", "DELETE"]  # both legs canceled
    assert all(g["status"] == "canceled" for g in fake.orders[entry]["legs"])
    (sell,) = sells(fake, "AAPL")
    assert float(sell["qty"]) == 5 and fake.positions.get("AAPL", 0.0) == pytest.approx(0.0)
    assert rt.store.one("SELECT exit_reason FROM trades")["exit_reason"] == "bearish_news"
    assert rt.store.scalar("SELECT COUNT(*) FROM orders WHERE status NOT IN "
                           "('filled', 'canceled', 'rejected', 'expired')") == 0


def test_a_late_fill_of_our_exit_after_a_booked_close_never_wedges_the_store(rt, fake):
    buy(rt, "BTC/USD")
    fake.prices["BTC/USD"] = 90000.0
    fake.fill_mode = "new"
    exits.check_exits(rt)
    (sell,) = sells(fake, "BTC/USD")  # our exit rests at the broker...
    fake.close_by_hand("BTC/USD", 89000.0)  # ...a person closes the position by hand...
    assert reconcile.reconcile(rt, accept=True)["rows"][0]["exit_price"] == pytest.approx(89000.0)
    assert rt.store.positions() == []
    fake.fill(sell["client_order_id"])  # ...and our exit then fills too: the account is short 0.02
    for step in (exits.check_exits, orders.trade, reconcile.reconcile):  # every command keeps working
        step(rt)
    flagged = reconcile.reconcile(rt)
    assert sorted(r["kind"] for r in flagged["rows"]) == ["overfill", "position_qty"]
    over = next(r for r in flagged["rows"] if r["kind"] == "overfill")
    assert over["client_order_id"] == sell["client_order_id"] and over["broker_view"] == pytest.approx(0.02)
    assert orders.trade(rt)["blocked_by_reconcile"]  # no entries while the account is short
    assert rt.store.scalar("SELECT COUNT(*) FROM fills WHERE client_order_id = ?", [sell["client_order_id"]]) == 1
    fake.positions.pop("BTC/USD")  # the person buys the short back
    assert reconcile.reconcile(rt, accept=True)["accepted"]
    assert rt.store.scalar("SELECT COUNT(*) FROM reconcile_diffs WHERE status = 'open'") == 0
    assert not orders.trade(rt).get("blocked_by_reconcile")


def test_reconcile_books_nothing_for_a_symbol_whose_own_order_could_not_be_looked_up(rt, fake):
    buy(rt, "BTC/USD")
    fake.prices["BTC/USD"] = 90000.0
    fake.fill_mode = "new"
    exits.check_exits(rt)
    (sell,) = sells(fake, "BTC/USD")
    fake.fill(sell["client_order_id"])  # it fills at the broker, but our look-up fails this time
    fake.down["GET /v2/orders:by_client_order_id"] = 500  # every retry of the look-up fails too
    out = reconcile.reconcile(rt, accept=True)
    del fake.down["GET /v2/orders:by_client_order_id"]
    assert out["differences"] == 1 and "could not be looked up" in out["rows"][0]["note"]
    assert len(rt.store.positions()) == 1  # not booked as a stand-in sale...
    again = reconcile.reconcile(rt)  # ...the next run sees our own fill and books that
    assert again["differences"] == 0 and rt.store.positions() == []
    trade = rt.store.one("SELECT * FROM trades")
    assert trade["exit_order_id"] == sell["client_order_id"] and trade["exit_price"] == pytest.approx(90000.0)
    assert rt.store.scalar("SELECT COUNT(*) FROM fills WHERE side = 'sell'") == 1


def test_alpaca_crypto_fee_in_the_coin_leaves_the_position_equal_to_the_broker(rt, fake):
    fake.crypto_fee_bps = 25  # Alpaca takes its crypto fee out of the coin received
    entry = buy(rt, "BTC/USD", notional=1900.0)  # 0.02 BTC bought, 0.01995 held
    rec = reconcile.reconcile(rt)  # every tick in paper/live
    assert rec["differences"] == 0
    (pos,) = rt.store.positions()
    assert pos["qty"] == pytest.approx(fake.positions["BTC/USD"]) == pytest.approx(0.01995)
    fee = rt.store.one("SELECT * FROM fills WHERE client_order_id = ? AND fee_currency IS NOT NULL", [entry])
    assert fee["fee_currency"] == "BTC" and fee["fee"] == pytest.approx(0.00005) and fee["cash_flow"] == 0
    assert not orders.trade(rt).get("blocked_by_reconcile")
    fake.prices["BTC/USD"] = 90000.0
    assert exits.check_exits(rt)["exits"] == 1
    assert float(sells(fake, "BTC/USD")[0]["qty"]) == pytest.approx(0.01995)
    trade = rt.store.one("SELECT * FROM trades")
    assert trade["pnl"] == pytest.approx(rt.store.cash(rt.settings.capital) - rt.settings.capital, abs=0.01)
    assert reconcile.reconcile(rt)["differences"] == 0 and rt.store.positions() == []
    assert rt.store.cash(rt.settings.capital) == pytest.approx(rt.settings.capital - 0.02 * 95000 + 0.01995 * 90000,
                                                               abs=0.01)


def test_no_request_reaches_a_provider_while_the_store_is_in_a_write_transaction(rt, fake):
    from tokenomics.trading import account
    from tokenomics.trading.loop import tick

    import threading

    during: list[tuple[str, bool]] = []
    fake.on_request = lambda method, path: during.append((path, rt.store.db.conn.in_transaction))
    buy(rt, "BTC/USD")
    buy_aapl = buy(rt, "AAPL", notional=1000.0)
    fake.prices["BTC/USD"] = 94000.0
    account.mark_to_market(rt)
    fake.close_by_hand("BTC/USD", 94000.0, qty=0.01)
    fake.positions["ETH/USD"] = 1.0  # not ours: ignored
    reconcile.reconcile(rt, accept=True)
    tick(rt, 1, threading.Event(), [("check-exits", exits.check_exits), ("trade", orders.trade)])
    assert during and buy_aapl
    assert [p for p, locked in during if locked] == []


def test_no_sell_is_sent_for_a_position_the_broker_no_longer_holds(rt, fake):
    buy(rt, "BTC/USD")
    fake.close_by_hand("BTC/USD", 94000.0)
    assert reconcile.reconcile(rt)["differences"] == 1  # open until a person accepts the broker's view
    fake.prices["BTC/USD"] = 90000.0
    for _ in range(3):
        exits.check_exits(rt)
    assert sells(fake, "BTC/USD") == []  # only the hand close: nothing sent, the account never goes short
    tried = rt.store.all("SELECT status, error FROM orders WHERE intent = 'exit'")
    assert len(tried) == 1 and tried[0]["status"] == "rejected" and "holds no" in tried[0]["error"]
    assert reconcile.reconcile(rt, accept=True)["rows"][0]["exit_price"] == pytest.approx(94000.0)
    assert rt.store.positions() == [] and rt.store.one("SELECT exit_reason FROM trades")["exit_reason"] == \
        "closed_at_broker"


def test_a_tick_looks_each_bracket_leg_up_once_and_still_books_a_leg_fill_on_the_next(rt, fake):
    """Reconcile, check-exits and trade each resumed the open orders: a bracketed position cost six
    look-ups of its two resting legs per tick (Alpaca allows 200 requests a minute). Once per leg per
    tick is enough: nothing in the tick sells without first asking the broker to cancel the legs."""
    entry = buy(rt, "AAPL", notional=1000.0)

    def lookups(since: int) -> int:
        return sum(1 for m, path in fake.requests[since:] if path == "/v2/orders:by_client_order_id")

    n = len(fake.requests)
    loop.tick(rt, 1, threading.Event())
    assert lookups(n) == 2
    fake.fill_leg(entry, "stop", 194.5)  # between ticks, the stop leg fills at the broker
    fake.prices["AAPL"] = 194.0
    n = len(fake.requests)
    loop.tick(rt, 2, threading.Event())
    assert lookups(n) <= 2
    trade = rt.store.one("SELECT * FROM trades")
    assert trade["exit_reason"] == "stop_loss" and trade["exit_price"] == pytest.approx(194.5)
    assert rt.store.positions() == [] and sells(fake, "AAPL") == []
