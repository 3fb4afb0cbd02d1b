"""Each rule of the loop's core logic, at and around its boundary."""

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenomics.core import risk
from tokenomics.core.exits import ExitRules, exit_reason
from tokenomics.core.money import cents, floor_to
from tokenomics.core.portfolio import apply_fill, cash_flow, equity
from tokenomics.core.signals import decide_entry
from tokenomics.core.sizing import fixed_range

LIMITS = risk.RiskLimits(max_open_positions=3, max_position_pct=10, min_order_usd=1,
                         daily_loss_limit_pct=3, monthly_loss_limit_pct=10)
RULES = ExitRules(stop_loss_pct=2.5, take_profit_pct=6, max_hold_days=65, exit_on_bearish=True,
                  bearish_min_conviction=70)


def entry(**kw):
    base = dict(sentiment="bullish", conviction=80, min_conviction=70, held=False, pending=False,
                open_slots=1, tradable=True, stale=False)
    base.update(kw)
    return decide_entry(**base)


@pytest.mark.parametrize("kw,expected", [
    ({}, "new"),
    ({"conviction": 70}, "new"),
    ({"conviction": 69}, "skipped"),
    ({"sentiment": "bearish", "conviction": 99}, "skipped"),
    ({"sentiment": "neutral"}, "skipped"),
    ({"held": True}, "skipped"),
    ({"pending": True}, "skipped"),
    ({"open_slots": 0}, "skipped"),
    ({"tradable": False}, "skipped"),
    ({"stale": True}, "skipped"),
])
def test_entry_threshold_and_capacity(kw, expected):
    assert entry(**kw).status == expected


def test_skip_reason_names_the_rule():
    assert "min_conviction" in entry(conviction=50).reason
    assert "capacity" in entry(open_slots=0).reason


def test_fixed_range_maps_threshold_to_min_and_certainty_to_max():
    assert fixed_range(0.70, min_usd=500, max_usd=1000, floor=0.70) == 500
    assert fixed_range(1.00, min_usd=500, max_usd=1000, floor=0.70) == 1000
    assert fixed_range(0.85, min_usd=500, max_usd=1000, floor=0.70) == 750
    assert fixed_range(0.10, min_usd=500, max_usd=1000, floor=0.70) == 500  # below floor clamps


def pf(**kw):
    base = dict(cash=10_000, equity=10_000, positions={}, pending_entries={}, halts=())
    base.update(kw)
    return risk.Portfolio(**base)


def test_gate_accepts_within_limits():
    d = risk.gate(risk.Proposal("AAPL", "buy", 800), pf(), LIMITS)
    assert (d.decision, d.approved, d.rule) == ("accept", 800, "all_limits")


def test_gate_shrinks_to_the_position_cap():
    d = risk.gate(risk.Proposal("AAPL", "buy", 1500), pf(), LIMITS)
    assert (d.decision, d.approved, d.rule) == ("shrink", 1000, "max_position_pct")


def test_gate_shrinks_to_cash_after_pending_and_costs():
    d = risk.gate(risk.Proposal("AAPL", "buy", 900, cost_rate=0.01), pf(cash=1000, pending_entries={"MSFT": 600}),
                  LIMITS)
    assert d.decision == "shrink" and d.rule == "cash"
    assert d.approved == pytest.approx(396.03, abs=0.01)


def test_gate_rejects_at_max_open_positions_counting_pending():
    d = risk.gate(risk.Proposal("AAPL", "buy", 500),
                  pf(positions={"MSFT": 500, "NVDA": 500}, pending_entries={"TSLA": 500}), LIMITS)
    assert (d.decision, d.rule) == ("reject", "max_open_positions")


def test_gate_rejects_when_halted_and_names_the_halt():
    d = risk.gate(risk.Proposal("AAPL", "buy", 500), pf(halts=("daily_loss_limit",)), LIMITS)
    assert (d.decision, d.rule) == ("reject", "daily_loss_limit")


def test_gate_rejects_shorts_and_pyramiding_but_allows_exits_when_halted():
    assert risk.gate(risk.Proposal("AAPL", "sell", 500), pf(), LIMITS).rule == "long_only"
    assert risk.gate(risk.Proposal("AAPL", "buy", 500), pf(positions={"AAPL": 10}), LIMITS).rule == "already_held"
    d = risk.gate(risk.Proposal("AAPL", "sell", 500, "exit"), pf(positions={"AAPL": 500}, halts=("x",)), LIMITS)
    assert d.decision == "accept"


def test_gate_rejects_dust_after_shrinking():
    d = risk.gate(risk.Proposal("AAPL", "buy", 500), pf(cash=0.5), LIMITS)
    assert (d.decision, d.rule) == ("reject", "cash")


@settings(max_examples=300, deadline=None)
@given(
    cash=st.floats(0, 50_000), extra=st.floats(0, 50_000), notional=st.floats(0.01, 20_000),
    n_pos=st.integers(0, 5), n_pend=st.integers(0, 3), cost=st.floats(0, 0.02),
    halted=st.booleans(),
)
def test_no_accepted_entry_breaks_a_limit(cash, extra, notional, n_pos, n_pend, cost, halted):
    positions = {f"P{i}": extra / max(n_pos, 1) for i in range(n_pos)}
    pending = {f"Q{i}": 100.0 for i in range(n_pend)}
    eq = cash + sum(positions.values())
    p = risk.Portfolio(cash, eq, positions, pending, ("daily_loss_limit",) if halted else ())
    d = risk.gate(risk.Proposal("NEW", "buy", notional, cost_rate=cost), p, LIMITS)
    if d.accepted:
        assert not halted
        assert d.approved <= notional + 1e-9
        assert d.approved <= LIMITS.max_position_pct / 100 * eq + 1e-9
        assert d.approved * (1 + cost) <= cash - sum(pending.values()) + 1e-6
        assert len(positions) + len(pending) < LIMITS.max_open_positions
        assert d.approved >= LIMITS.min_order_usd


def test_loss_halts_fire_at_the_limit():
    assert risk.loss_halts(equity=9700, day_start=10_000, month_start=10_000, limits=LIMITS)[0][0] == "daily_loss_limit"
    assert risk.loss_halts(equity=9701, day_start=10_000, month_start=10_000, limits=LIMITS) == []
    fired = risk.loss_halts(equity=8900, day_start=9000, month_start=10_000, limits=LIMITS)
    assert [r for r, _ in fired] == ["monthly_loss_limit"]
    assert risk.loss_halts(equity=5000, day_start=None, month_start=None, limits=LIMITS) == []


@pytest.mark.parametrize("price,days,bearish,expected", [
    (97.5, 1, None, "stop_loss"),
    (97.51, 1, None, None),
    (106.0, 1, None, "take_profit"),
    (105.99, 1, None, None),
    (100.0, 65, None, "max_hold"),
    (100.0, 64, None, None),
    (100.0, 1, 70, "bearish_news"),
    (100.0, 1, 69, None),
    (97.0, 70, 90, "stop_loss"),  # the first rule that fires wins
])
def test_exit_rules(price, days, bearish, expected):
    assert exit_reason(entry_price=100.0, price=price, days_held=days, rules=RULES,
                       bearish_conviction=bearish) == expected


def test_fills_make_exact_round_trips():
    buy = apply_fill(qty=0, avg_price=0, cost=0, fees=0, side="buy", fill_qty=2, price=100, fee=0.2)
    assert (buy.qty, buy.avg_price, buy.cost) == (2, 100, 200)
    sell = apply_fill(qty=buy.qty, avg_price=buy.avg_price, cost=buy.cost, fees=buy.fees,
                      side="sell", fill_qty=2, price=110, fee=0.22)
    assert sell.qty == 0 and sell.realized == pytest.approx(20 - 0.42)
    assert cash_flow("buy", 2, 100, 0.2) + cash_flow("sell", 2, 110, 0.22) == pytest.approx(sell.realized)
    with pytest.raises(ValueError):
        apply_fill(qty=1, avg_price=1, cost=1, fees=0, side="sell", fill_qty=2, price=1, fee=0)


def test_money_rounding():
    assert cents(0.125) == 0.12 and cents(0.135) == 0.14  # banker's rounding on exact decimals
    assert floor_to(1.23456789, 1e-6) == 1.234567
    assert equity(100.005, [0.0]) == 100.0



def test_realized_pnl_equals_the_fills_cash_flows_to_the_cent():
    qty, price_in, price_out = 0.00787654, 95123.4567, 97001.2345
    fee_in, fee_out = cents(qty * price_in * 0.001), cents(qty * price_out * 0.001)
    pos = apply_fill(qty=0, avg_price=0, cost=0, fees=0, side="buy", fill_qty=qty, price=price_in, fee=fee_in)
    out = apply_fill(qty=pos.qty, avg_price=pos.avg_price, cost=pos.cost, fees=pos.fees, side="sell",
                     fill_qty=qty, price=price_out, fee=fee_out)
    flows = cash_flow("buy", qty, price_in, fee_in) + cash_flow("sell", qty, price_out, fee_out)
    assert out.realized == cents(flows)
