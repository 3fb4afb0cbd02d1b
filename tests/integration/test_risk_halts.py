"""The halts in-process: loss limits lift when the period rolls; the drawdown halt latches until lifted;
a stop-out cools the symbol down. Each rejects new entries naming its rule."""

from datetime import timedelta

from tokenomics.trading import account
from tokenomics.core import risk
from tokenomics.store import iso


def equity_point(rt, ts, value):
    with rt.store.tx():
        rt.store.execute("INSERT INTO equity(ts, cash, positions_value, equity) VALUES (?, ?, 0, ?)",
                         [iso(ts), value, value])


def entry_rule(rt, symbol="BTC/USD"):
    d = risk.gate(risk.Proposal(symbol, "buy", 500, "entry", rt.cost_rate, rt.asset_class(symbol)),
                  account.portfolio(rt), account.limits(rt))
    return d.decision, d.rule


def test_drawdown_halt_latches_across_days_until_resumed(rt):
    rt.settings.risk.daily_loss_limit_pct = 100
    rt.settings.risk.monthly_loss_limit_pct = 100
    equity_point(rt, rt.now() - timedelta(hours=5), 12_600)  # now 10,000: 20.6 % below the peak
    account.mark_to_market(rt)
    assert [h["rule"] for h in account.active_halts(rt)] == ["max_drawdown"]
    assert entry_rule(rt) == ("reject", "max_drawdown")
    rt.advance(24 * 40)  # forty days and a month boundary later: still halted
    account.mark_to_market(rt)
    assert entry_rule(rt) == ("reject", "max_drawdown")
    assert rt.store.scalar("SELECT COUNT(*) FROM halts WHERE rule = 'max_drawdown'") == 1  # fired once
    lifted = account.lift_halts(rt, "reviewed")
    assert [h["rule"] for h in lifted] == ["max_drawdown"]
    account.mark_to_market(rt)  # the peak restarts at the lift: no new halt at the same equity
    assert account.active_halts(rt) == [] and entry_rule(rt) == ("accept", "all_limits")


def test_drawdown_below_the_limit_does_not_halt(rt):
    equity_point(rt, rt.now() - timedelta(hours=1), 12_400)  # 19.4 % below: under the 20 % limit
    rt.settings.risk.daily_loss_limit_pct = 100
    rt.settings.risk.monthly_loss_limit_pct = 100
    account.mark_to_market(rt)
    assert account.active_halts(rt) == []


def test_daily_loss_halt_lifts_the_next_day(rt):
    equity_point(rt, rt.now() - timedelta(minutes=1), 10_400)  # a 3.8 % loss within today
    account.mark_to_market(rt)
    assert entry_rule(rt) == ("reject", "daily_loss_limit")
    rt.advance(24)
    account.mark_to_market(rt)
    assert entry_rule(rt) == ("accept", "all_limits")


def test_stop_loss_cooldown_blocks_the_symbol_then_expires(rt):
    with rt.store.tx():
        rt.store.db["trades"].insert({
            "entry_order_id": "e1", "exit_order_id": "x1", "symbol": "BTC/USD", "source": "sentiment", "qty": 0.01,
            "entry_price": 100, "exit_price": 97, "fees": 0.1, "pnl": -3.1, "return_pct": -3.1,
            "opened_at": iso(rt.now() - timedelta(hours=3)), "closed_at": iso(rt.now() - timedelta(hours=1)),
            "exit_reason": "stop_loss"})
    assert entry_rule(rt) == ("reject", "stop_loss_cooldown")
    assert entry_rule(rt, "ETH/USD") == ("accept", "all_limits")
    rt.advance(24)
    assert entry_rule(rt) == ("accept", "all_limits")
