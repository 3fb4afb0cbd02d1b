"""Each rule of the loop's core logic, at and around its boundary."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenomics.core import rebalance as rb
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


def test_gate_messages_round_money_to_cents_and_percentages_to_2_decimals():
    import dataclasses
    import re

    limits = dataclasses.replace(LIMITS, max_position_pct=7.5765881928709014, max_leverage=1.0000000000000002,
                                 max_asset_class_pct={"equity": 12.345678901}, min_order_usd=2000.0000000001)
    details = [risk.gate(risk.Proposal("AAPL", "buy", 1500), pf(equity=10_000.123456789), limits).detail,
               risk.gate(risk.Proposal("AAPL", "buy", 900), pf(equity=10_000.123456789, positions={"MSFT": 9500.5}),
                         dataclasses.replace(limits, max_position_pct=50)).detail]
    assert "capped at 7.58% of equity 10000.12 = 757.67" in details[0]
    assert "equity exposure capped at 12.35% of equity 10000.12" in details[1]
    assert all("below min_order_usd 2000.00" in d for d in details), details
    assert all(not re.search(r"\d\.\d{3,}", d) for d in details), details
    halts = risk.loss_halts(equity=9000.123456, day_start=10000.987654, month_start=None,
                            limits=dataclasses.replace(limits, daily_loss_limit_pct=3.33333333333))
    assert halts and "limit 3.33%" in halts[0][1] and not re.search(r"\d\.\d{3,}", halts[0][1])


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



# --- the rules added with issue 5: leverage, asset-class exposure, cooldown, drawdown latch -------------
FULL = risk.RiskLimits(max_open_positions=5, max_position_pct=50, min_order_usd=1, daily_loss_limit_pct=3,
                       monthly_loss_limit_pct=10, max_leverage=0.6, max_drawdown_pct=20,
                       max_asset_class_pct={"crypto": 20, "equity": 100})


def test_gate_shrinks_to_the_asset_class_cap_counting_pending():
    p = pf(positions={"BTC/USD": 1200}, pending_entries={"ETH/USD": 300},
           asset_classes={"BTC/USD": "crypto", "ETH/USD": "crypto"})
    d = risk.gate(risk.Proposal("SOL/USD", "buy", 2000, asset_class="crypto"), p, FULL)
    assert (d.decision, d.rule, d.approved) == ("shrink", "max_asset_class_pct", 500)
    full = pf(positions={"BTC/USD": 2000}, asset_classes={"BTC/USD": "crypto"})
    assert risk.gate(risk.Proposal("ETH/USD", "buy", 100, asset_class="crypto"), full, FULL).rule == \
        "max_asset_class_pct"


def test_gate_shrinks_to_the_leverage_cap():
    d = risk.gate(risk.Proposal("AAPL", "buy", 3000), pf(positions={"MSFT": 4000}, cash=6000), FULL)
    assert (d.decision, d.rule, d.approved) == ("shrink", "max_leverage", 2000)


def test_gate_rejects_a_symbol_in_its_stop_loss_cooldown():
    d = risk.gate(risk.Proposal("AAPL", "buy", 500), pf(cooling=("AAPL",)), FULL)
    assert (d.decision, d.rule) == ("reject", "stop_loss_cooldown")
    assert risk.gate(risk.Proposal("MSFT", "buy", 500), pf(cooling=("AAPL",)), FULL).accepted


def test_drawdown_halt_fires_at_the_limit_from_the_peak():
    assert risk.drawdown_halt(equity=8000, peak=10_000, limits=FULL)[0] == "max_drawdown"
    assert risk.drawdown_halt(equity=8001, peak=10_000, limits=FULL) is None
    assert risk.drawdown_halt(equity=8000, peak=None, limits=FULL) is None


SYMS = ["A", "B", "C", "X/USD", "Y/USD"]
NEW = ["NEW", "Z/USD", "N2", "W/USD"]
CLASSES = {s: "crypto" if "/" in s else "equity" for s in SYMS + NEW}
# mostly no halt, no cooldown and room for one more position: most examples reach the limit assertions
# (hypothesis favours the ends of a range and the first elements of a list, so the rare cases are drawn
# from the middle of a wide range of integers)
def rare(i: int) -> int:
    """0 for about 9 in 10 draws (the ends included), else 1 or 2."""
    return 0 if i % 20 >= 2 or i in (0, 1000) else 1 + i % 20


HALTS = st.integers(0, 1000).map(lambda i: [(), ("daily_loss_limit",), ("max_drawdown",)][rare(i)])
REACHED: list[str] = []  # the gate's deciding rule of every accepted example (counted by the test below)


def gate_inputs():
    return dict(
        cash=st.floats(0, 50_000), values=st.lists(st.floats(0, 20_000), min_size=5, max_size=5),
        held=st.lists(st.booleans(), min_size=5, max_size=5),
        pend=st.lists(st.floats(0, 3_000), min_size=5, max_size=5),
        pending_on=st.lists(st.booleans(), min_size=5, max_size=5), cost=st.floats(0, 0.02),
        max_open=st.integers(0, 1000).map(lambda i: 1 + i % 6 if rare(i) else 12), pos_pct=st.floats(1, 100),
        leverage=st.floats(0.5, 3), crypto_pct=st.floats(5, 100), equity_pct=st.floats(5, 100),
        min_order=st.floats(0, 100), halts=HALTS,
        cooling=st.integers(0, 1000).map(lambda i: [(SYMS + NEW)[i % 9]] if rare(i) else []),
    )


def book(cash, values, held, pend, pending_on, halts, cooling):
    positions = {s: v for s, v, h in zip(SYMS, values, held) if h}
    pending = {s: v for s, v, on, h in zip(SYMS, pend, pending_on, held) if on and not h}
    eq = cash + sum(positions.values())
    return positions, pending, eq, risk.Portfolio(cash, eq, positions, pending, halts, CLASSES, tuple(cooling))


@settings(max_examples=400, deadline=None, derandomize=True)  # the same examples every run: the count below is stable
@given(symbol=st.integers(0, 1000).map(lambda i: SYMS[i % 5] if rare(i) else NEW[i % 4]),
       notional=st.floats(0.01, 30_000), **gate_inputs())
def test_no_accepted_entry_breaks_any_limit(cash, values, held, pend, pending_on, symbol, notional, cost, max_open,
                                            pos_pct, leverage, crypto_pct, equity_pct, min_order, halts, cooling):
    limits = risk.RiskLimits(max_open, pos_pct, min_order, 3, 10, True, leverage, 20,
                             {"crypto": crypto_pct, "equity": equity_pct})
    positions, pending, eq, p = book(cash, values, held, pend, pending_on, halts, cooling)
    ac = CLASSES[symbol]
    d = risk.gate(risk.Proposal(symbol, "buy", notional, cost_rate=cost, asset_class=ac), p, limits)
    if not d.accepted:
        assert d.rule and d.approved == 0
        return
    REACHED.append(d.rule)
    others = {s: v for s, v in pending.items() if s != symbol}
    assert halts == ()
    assert symbol not in cooling and symbol not in positions
    assert 0 < d.approved <= notional + 1e-9 and d.approved >= min_order
    assert len(positions) + len(others) < max_open
    assert d.approved <= pos_pct / 100 * eq + 1e-6
    assert d.approved * (1 + cost) <= cash - sum(others.values()) + 1e-6
    class_cap = {"crypto": crypto_pct, "equity": equity_pct}[ac] / 100 * eq
    in_class = sum(v for s, v in {**positions, **others}.items() if CLASSES[s] == ac)
    assert in_class + d.approved <= class_cap + 1e-6
    assert sum(positions.values()) + sum(others.values()) + d.approved <= leverage * eq + 1e-6


@settings(max_examples=400, deadline=None, derandomize=True)
@given(symbol=st.integers(0, len(SYMS) - 1).map(lambda i: SYMS[i]), notional=st.floats(0.01, 30_000),
       **gate_inputs())
def test_no_accepted_rebalance_top_up_breaks_any_limit(cash, values, held, pend, pending_on, symbol, notional, cost,
                                                       max_open, pos_pct, leverage, crypto_pct, equity_pct, min_order,
                                                       halts, cooling):
    """A rebalance buy of a symbol already held goes through the same gate: halts, cooldown, the
    position cap on the whole position, the asset-class cap and max_leverage counting what is held."""
    held = [True if s == symbol else h for s, h in zip(SYMS, held)]
    values = [max(v, 1.0) if s == symbol else v for s, v in zip(SYMS, values)]
    limits = risk.RiskLimits(max_open, pos_pct, min_order, 3, 10, True, leverage, 20,
                             {"crypto": crypto_pct, "equity": equity_pct})
    positions, pending, eq, p = book(cash, values, held, pend, pending_on, halts, cooling)
    ac = CLASSES[symbol]
    d = rb.gate_buy(symbol, notional, positions[symbol], p, limits, cost, ac)
    if not d.accepted:
        assert d.rule and d.approved == 0
        return
    REACHED.append("top-up " + d.rule)
    assert halts == () and symbol not in cooling
    assert 0 < d.approved <= notional + 1e-9 and d.approved >= min_order
    assert positions[symbol] + d.approved <= pos_pct / 100 * eq + 1e-6
    assert d.approved * (1 + cost) <= cash - sum(pending.values()) + 1e-6
    class_cap = {"crypto": crypto_pct, "equity": equity_pct}[ac] / 100 * eq
    in_class = sum(v for s, v in {**positions, **pending}.items() if CLASSES[s] == ac)
    assert in_class + d.approved <= class_cap + 1e-6
    assert sum(positions.values()) + sum(pending.values()) + d.approved <= leverage * eq + 1e-6


def test_the_gate_properties_reach_their_limit_assertions():
    """Most generated examples get past the early rejects (halts, already held, cooldown) to the limit
    assertions; both properties are run again here and their accepted examples counted."""
    REACHED.clear()
    test_no_accepted_entry_breaks_any_limit()
    entries = len(REACHED)
    test_no_accepted_rebalance_top_up_breaks_any_limit()
    top_ups = len(REACHED) - entries
    print(f"reached the limit assertions: entries {entries}/400, top-ups {top_ups}/400")
    assert entries >= 80 and top_ups >= 80, (entries, top_ups)  # 6 to 30 of 400 before
    assert {"all_limits", "max_position_pct", "cash"} <= set(REACHED)  # accepted whole and shrunk by each limit


def test_a_top_up_at_the_asset_class_cap_is_rejected_like_a_new_coin():
    limits = risk.RiskLimits(10, 50, 1, 3, 10, True, 1.0, 20, {"crypto": 30})
    pf = risk.Portfolio(7000, 10000, {"BTC/USD": 3000.0}, {}, (), {"BTC/USD": "crypto", "ETH/USD": "crypto"})
    assert rb.gate_buy("ETH/USD", 500, 0.0, pf, limits, 0.0, "crypto").rule == "max_asset_class_pct"
    top_up = rb.gate_buy("BTC/USD", 500, 3000.0, pf, limits, 0.0, "crypto")
    assert not top_up.accepted and top_up.rule == "max_asset_class_pct"
    lev = risk.RiskLimits(10, 90, 1, 3, 10, True, 0.5, 20)
    assert rb.gate_buy("BTC/USD", 2500, 3000.0, pf, lev, 0.0, "crypto").approved == pytest.approx(2000.0)
    cooling = risk.Portfolio(7000, 10000, {"BTC/USD": 3000.0}, cooling=("BTC/USD",))
    assert rb.gate_buy("BTC/USD", 500, 3000.0, cooling, limits, 0.0, "crypto").rule == "stop_loss_cooldown"


def test_realized_pnl_equals_the_fills_cash_flows_to_the_cent():
    qty, price_in, price_out = 0.00787654, 95123.4567, 97001.2345
    fee_in, fee_out = cents(qty * price_in * 0.001), cents(qty * price_out * 0.001)
    pos = apply_fill(qty=0, avg_price=0, cost=0, fees=0, side="buy", fill_qty=qty, price=price_in, fee=fee_in)
    out = apply_fill(qty=pos.qty, avg_price=pos.avg_price, cost=pos.cost, fees=pos.fees, side="sell",
                     fill_qty=qty, price=price_out, fee=fee_out)
    flows = cash_flow("buy", qty, price_in, fee_in) + cash_flow("sell", qty, price_out, fee_out)
    assert out.realized == cents(flows)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0.05, 0.95), st.floats(1, 1000), st.floats(0, 0.003)),
                min_size=1, max_size=8))
def test_a_round_trip_in_many_fills_realizes_exactly_its_cash_flows(steps):
    """Buys, partial sells (a rebalance trim, a partial exit), more buys, then a full close: the trade's
    P&L is the sum of every fill's cash flow, to the cent, and it covers every unit bought."""
    pos = apply_fill(qty=0, avg_price=0, cost=0, fees=0, side="buy", fill_qty=1.5, price=100, fee=0.15)
    flows, bought = cash_flow("buy", 1.5, 100, 0.15), 1.5
    for is_buy, frac, price, fee_rate in steps:
        side, q = ("buy", round(frac * 3, 6)) if is_buy else ("sell", round(pos.qty * frac, 9))
        fee = cents(q * price * fee_rate)
        pos = apply_fill(qty=pos.qty, avg_price=pos.avg_price, cost=pos.cost, fees=pos.fees, side=side, fill_qty=q,
                         price=price, fee=fee, partial=pos.partial, sold_qty=pos.sold_qty, sold_cost=pos.sold_cost)
        flows += cash_flow(side, q, price, fee)
        bought += q if is_buy else 0.0
        assert pos.realized is None and pos.qty > 0
    last = apply_fill(qty=pos.qty, avg_price=pos.avg_price, cost=pos.cost, fees=pos.fees, side="sell",
                      fill_qty=pos.qty, price=123.45, fee=0.1, partial=pos.partial, sold_qty=pos.sold_qty,
                      sold_cost=pos.sold_cost)
    flows += cash_flow("sell", pos.qty, 123.45, 0.1)
    assert last.qty == 0 and last.realized == pytest.approx(cents(flows), abs=0.005)
    assert last.sold_qty == pytest.approx(bought)
