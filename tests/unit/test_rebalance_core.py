"""Rebalance arithmetic: simple weights, drift, the plan's trades, band, minimum, costs, plan ids."""

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tokenomics.core import rebalance as rb
from tokenomics.core import risk


def test_equal_and_inverse_vol_weights():
    assert rb.equal_weights(["A", "B", "C", "D"]) == {s: 0.25 for s in "ABCD"}
    w = rb.inverse_vol_weights({"A": 0.1, "B": 0.2, "C": 0.4})
    # 1/0.1 : 1/0.2 : 1/0.4 = 4 : 2 : 1
    assert w == pytest.approx({"A": 4 / 7, "B": 2 / 7, "C": 1 / 7})
    with pytest.raises(ValueError):
        rb.inverse_vol_weights({"A": 0.1, "B": 0.0})


def test_volatility_is_the_sample_standard_deviation():
    assert rb.volatility([0.01, -0.01, 0.02, float("nan"), 0.0]) == pytest.approx(
        math.sqrt(((0.01 - 0.005) ** 2 + (-0.015) ** 2 + 0.015 ** 2 + 0.005 ** 2) / 3))


@given(st.lists(st.floats(0.001, 10), min_size=3, max_size=12), st.floats(0, 0.08), st.floats(0.35, 1))
@example([1.0, 1.0, 1.0, 1.0, 7.0, 7.0], 0.078125, 0.375)  # raising the small ones must lower the capped ones
def test_clip_weights_respects_bounds_and_sums_to_one(raw, lo, hi):
    w = rb.clip_weights({f"S{i}": x for i, x in enumerate(raw)}, lo, hi)
    assert sum(w.values()) == pytest.approx(1.0)
    assert all(lo - 1e-9 <= x <= hi + 1e-9 for x in w.values())


def test_clip_weights_keeps_proportions_of_unbound_weights_and_rejects_impossible_bounds():
    w = rb.clip_weights({"A": 0.7, "B": 0.2, "C": 0.1}, 0.0, 0.5)
    assert w["A"] == pytest.approx(0.5) and w["B"] / w["C"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        rb.clip_weights({"A": 0.5, "B": 0.5}, 0.0, 0.4)  # two symbols cannot reach 100% at 40% each
    with pytest.raises(ValueError):
        rb.clip_weights({"A": 0.5, "B": 0.5, "C": 0.0}, 0.4, 1.0)


def test_drift_score_counts_cash():
    assert rb.drift_score({"A": 0.5, "B": 0.5}, {"A": 0.5, "B": 0.5}) == 0.0
    assert rb.drift_score({}, {"A": 1.0}) == pytest.approx(1.0)  # all cash vs fully invested
    assert rb.drift_score({"A": 0.6, "B": 0.4}, {"A": 0.5, "B": 0.5}) == pytest.approx(0.1)


def plan(**kw):
    args = dict(values={"A": 6000.0, "B": 2000.0}, qtys={"A": 60.0, "B": 40.0},
                prices={"A": 100.0, "B": 50.0, "C": 20.0}, cash=2000.0,
                target={"A": 0.4, "B": 0.3, "C": 0.3}, min_trade_usd=10.0, band=0.0, fee_bps=10, slippage_bps=5)
    args.update(kw)
    return rb.plan_rebalance(**args)


def test_plan_moves_current_to_target_with_costs():
    p = plan()
    assert p.equity == 10000.0 and p.current == {"A": 0.6, "B": 0.2}
    by = {t.symbol: t for t in p.trades}
    assert [t.side for t in p.trades] == ["sell", "buy", "buy"]  # sells first
    rate = 15 / 1e4
    investable = 10000 - (2000 + 1000 + 3000) * rate
    assert by["A"].notional == pytest.approx(6000 - 0.4 * investable)
    assert by["A"].qty == pytest.approx(by["A"].notional / 100.0)
    assert by["C"].notional == pytest.approx(0.3 * investable)
    assert p.fees == pytest.approx(p.turnover * 10 / 1e4) and p.slippage == pytest.approx(p.turnover * 5 / 1e4)
    assert p.drift == pytest.approx((0.2 + 0.1 + 0.3 + 0.2) / 2)  # A, B, C and cash
    after = p.after()
    assert after == pytest.approx({"A": 0.4, "B": 0.3, "C": 0.3}, abs=1e-6)  # costs estimated on gross turnover


def test_band_and_min_trade_skip_small_changes():
    p = plan(target={"A": 0.595, "B": 0.205, "C": 0.2}, band=0.01)
    by = {t.symbol: t for t in p.trades}
    assert by["A"].status == "skipped" and "band" in by["A"].reason
    assert by["B"].status == "skipped" and by["C"].status == "planned"
    p = plan(target={"A": 0.6, "B": 0.2, "C": 0.2}, values={"A": 6000.0, "B": 2000.0}, min_trade_usd=100.0)
    by = {t.symbol: t for t in p.trades}
    assert by["A"].status == "skipped" and "min_trade_usd" in by["A"].reason  # only the cost haircut


def test_a_symbol_outside_the_target_is_sold_entirely_even_within_the_band():
    p = plan(target={"A": 0.5, "C": 0.5}, values={"A": 6000.0, "B": 5.0}, qtys={"A": 60.0, "B": 0.1}, band=0.05)
    b = next(t for t in p.trades if t.symbol == "B")
    assert b.side == "sell" and b.status == "planned" and b.qty == 0.1 and b.notional == 5.0


def test_plan_rejects_targets_that_do_not_sum_to_one():
    with pytest.raises(ValueError):
        plan(target={"A": 0.5, "B": 0.2})


def test_plan_id_is_deterministic_per_target_and_day():
    t = {"A": 0.3, "B": 0.7}
    assert rb.plan_id(t, "2026-01-26") == rb.plan_id({"B": 0.7, "A": 0.3 + 1e-9}, "2026-01-26")
    assert rb.plan_id(t, "2026-01-26") != rb.plan_id(t, "2026-01-27")
    assert rb.plan_id(t, "2026-01-26") != rb.plan_id({"A": 0.4, "B": 0.6}, "2026-01-26")


LIMITS = risk.RiskLimits(10, 10.0, 1.0, 3.0, 10.0)


def test_gate_buy_new_position_is_an_ordinary_entry():
    pf = risk.Portfolio(cash=5000, equity=10000)
    d = rb.gate_buy("A", 1500.0, 0.0, pf, LIMITS, 0.0)
    assert d.decision == "shrink" and d.approved == 1000.0 and d.rule == "max_position_pct"


def test_gate_buy_top_up_is_capped_on_the_whole_position():
    pf = risk.Portfolio(cash=5000, equity=10000, positions={"A": 700.0})
    d = rb.gate_buy("A", 500.0, 700.0, pf, LIMITS, 0.0)
    assert d.accepted and d.approved == 300.0
    pf = risk.Portfolio(cash=5000, equity=10000, positions={"A": 1000.0})
    assert rb.gate_buy("A", 100.0, 1000.0, pf, LIMITS, 0.0).decision == "reject"
    halted = risk.Portfolio(cash=5000, equity=10000, positions={"A": 100.0}, halts=("daily_loss_limit",))
    assert rb.gate_buy("A", 100.0, 100.0, halted, LIMITS, 0.0).rule == "daily_loss_limit"
