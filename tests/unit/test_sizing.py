"""Sizing methods: Kelly with a prior, volatility targeting (realised and ATR), the adaptive blend."""

import math

import numpy as np
import pytest

from tokenomics.core import sizing as z

PRIOR = dict(prior_trades=20, prior_win_rate=0.55, prior_payoff=1.0)


def test_kelly_with_no_history_is_the_priors_small_stake():
    est = z.kelly_estimate(z.TradeStats(), **PRIOR)
    assert (est.win_rate, est.payoff) == (0.55, 1.0)
    assert est.full == pytest.approx(0.10)  # 0.55 - 0.45 / 1
    assert z.kelly(0.8, equity=10_000, estimate=est, fraction=0.5) == pytest.approx(400.0)


def test_a_young_lucky_history_cannot_bet_big():
    lucky = z.TradeStats.of([0.05, 0.04, 0.06])  # three wins, no losses
    raw = 3 / 3  # an unshrunk win rate of 100 % would bet everything
    est = z.kelly_estimate(lucky, **PRIOR)
    assert est.win_rate == pytest.approx((3 + 20 * 0.55) / 23)
    assert est.full < 0.25 < raw


def test_a_long_history_dominates_the_prior():
    good = z.TradeStats.of([0.04] * 600 + [-0.02] * 400)  # p = 0.6, b = 2
    est = z.kelly_estimate(good, **PRIOR)
    assert est.win_rate == pytest.approx((600 + 11) / 1020)
    assert est.payoff == pytest.approx((1000 * 2 + 20 * 1) / 1020)
    assert est.full == pytest.approx(est.win_rate - (1 - est.win_rate) / est.payoff)
    losing = z.kelly_estimate(z.TradeStats.of([0.01] * 300 + [-0.03] * 700), **PRIOR)
    assert losing.full == 0.0  # negative edge: no bet


def test_realized_volatility_is_annualised_sample_std():
    closes = [100, 101, 99.99, 100.9899]  # returns +1 %, -1 %, +1 %
    r = np.array([0.01, -0.01, 0.01])
    assert z.realized_volatility(closes, 252) == pytest.approx(np.std(r, ddof=1) * math.sqrt(252), rel=1e-6)
    assert z.realized_volatility([100, 101], 252) is None


def test_atr_matches_talib():
    talib = pytest.importorskip("talib")
    rng = np.random.default_rng(3)
    c = 100 + np.cumsum(rng.normal(0, 1, 120))
    h, lo = c + rng.random(120), c - rng.random(120)
    assert z.atr_wilder(h, lo, c, 14) == pytest.approx(talib.ATR(h, lo, c, 14)[-1], rel=1e-12)
    assert z.atr_wilder(h[:14], lo[:14], c[:14], 14) is None
    assert z.atr_volatility(h, lo, c, 252) == pytest.approx(talib.ATR(h, lo, c, 14)[-1] / c[-1] * math.sqrt(252))


def test_vol_target_sizes_the_contribution_to_the_target():
    # 15 % target over 10 slots = 1.5 % contribution; a 30 % vol asset gets a 5 % weight
    assert z.vol_target(1.0, equity=10_000, asset_vol=0.30, target_vol=0.15, slots=10) == pytest.approx(500)
    assert z.vol_target(0.5, equity=10_000, asset_vol=0.60, target_vol=0.15, slots=10) == pytest.approx(125)
    assert z.vol_target(1.0, equity=10_000, asset_vol=None, target_vol=0.15, slots=10) == 0.0


def test_adaptive_weights_follow_recent_performance():
    assert z.adaptive_weights([]) == pytest.approx({m: 1 / 3 for m in z.BLENDED})
    # kelly sized the winners big and the loser small; fixed the opposite
    history = [({"fixed": 100, "kelly": 900, "vol-target": 500}, 3.0),
               ({"fixed": 900, "kelly": 100, "vol-target": 500}, -2.0)]
    w = z.adaptive_weights(history)
    assert w["kelly"] > w["vol-target"] > w["fixed"] and sum(w.values()) == pytest.approx(1)
    perf = {"fixed": (300 - 1800) / 1000, "kelly": (2700 - 200) / 1000, "vol-target": 0.5}
    assert w["kelly"] / w["fixed"] == pytest.approx(math.exp(perf["kelly"] - perf["fixed"]))
    cands = {"fixed": 600.0, "kelly": 300.0, "vol-target": 900.0}
    assert z.adaptive(cands, w) == pytest.approx(sum(w[m] * cands[m] for m in z.BLENDED), abs=0.01)
