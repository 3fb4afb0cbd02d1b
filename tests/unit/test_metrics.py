"""Risk metrics: hand-computed values, and equality with empyrical-reloaded on the same returns."""

import math

import numpy as np
import pytest

from tests.conftest import SHARED
from tokenomics.core import metrics as m

R4 = np.array([0.02, -0.01, 0.03, -0.02])
R5 = np.array([-0.05, -0.03, -0.01, 0.01, 0.03])
PATH = np.array([0.10, -0.20, 0.05, 0.30, -0.01])  # wealth 1, 1.1, .88, .924, 1.2012, 1.189188


def test_hand_computed_volatility_sharpe_sortino():
    # mean 0.005; deviations +-0.015, +-0.025 -> sample variance 0.0017 / 3
    sd = math.sqrt(0.0017 / 3)
    assert m.volatility(R4, 4) == pytest.approx(sd * 2, abs=1e-12)
    assert m.sharpe(R4, 4) == pytest.approx(0.005 / sd * 2, abs=1e-12)
    # downside over ALL four observations: sqrt((0 + 1e-4 + 0 + 4e-4) / 4)
    assert m.downside_deviation(R4, 1) == pytest.approx(math.sqrt(1.25e-4), abs=1e-12)
    assert m.sortino(R4, 1) == pytest.approx(0.005 / math.sqrt(1.25e-4), abs=1e-12)
    assert m.sortino(R4, 4) == pytest.approx(0.005 * 4 / (math.sqrt(1.25e-4) * 2), abs=1e-12)


def test_risk_free_rate_is_compounded_to_the_period():
    assert m.rf_per_period(0.21, 2) == pytest.approx(0.1, abs=1e-12)  # 1.1 ** 2 = 1.21
    shifted = m.sharpe(R4 + 0.001, 4, rf=0.001)
    assert shifted == pytest.approx(m.sharpe(R4, 4), abs=1e-12)


def test_max_drawdown_counts_a_first_period_loss_and_measures_duration():
    assert m.max_drawdown(np.array([-0.1, 0.05])) == pytest.approx(-0.1)
    assert m.max_drawdown(PATH) == pytest.approx(0.88 / 1.1 - 1)
    spell = m.max_drawdown_spell(PATH)
    assert (spell.peak, spell.trough, spell.end, spell.recovered, spell.duration) == (1, 2, 4, True, 3)
    unrecovered = m.max_drawdown_spell(np.array([0.1, -0.2, 0.05]))
    assert not unrecovered.recovered and unrecovered.duration == 2
    assert m.max_drawdown_spell(np.array([0.01, 0.02])) is None
    longest = m.longest_drawdown(np.array([-0.3, 0.5, -0.01, -0.01, -0.01, 0.1]))
    assert longest.duration == 4 and longest.depth == pytest.approx(0.99 ** 3 - 1)


def test_calmar_is_cagr_over_drawdown():
    final = 1.1 * 0.8 * 1.05 * 1.3 * 0.99
    assert m.cagr(PATH, 5) == pytest.approx(final - 1)
    assert m.calmar(PATH, 5) == pytest.approx((final - 1) / 0.2)
    assert math.isnan(m.calmar(np.array([0.01, 0.02]), 252))


def test_hand_computed_var_and_cvar():
    assert m.var_historical(R5, 0.75) == pytest.approx(-0.03)  # (n-1) * 0.25 = index 1 of the sorted
    assert m.cvar_historical(R5, 0.75) == pytest.approx(-0.04)  # mean of the 2 lowest
    sd = math.sqrt(0.004 / 4)
    z = -0.6744897501960817
    assert m.var_parametric(R5, 0.75) == pytest.approx(-0.01 + sd * z, abs=1e-12)
    pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert m.cvar_parametric(R5, 0.75) == pytest.approx(-0.01 - sd * pdf / 0.25, abs=1e-12)
    with pytest.raises(ValueError):
        m.var_historical(R5, 95)


@pytest.mark.parametrize("tf,ac,ppy", [
    ("1d", "equity", 252), ("1d", "crypto", 365), ("60m", "crypto", 8760), ("1h", "equity", 252 * 6.5),
    ("1m", "equity", 252 * 390), ("1w", "equity", 52), ("15m", "crypto", 365 * 96),
])
def test_annualisation_per_timeframe(tf, ac, ppy):
    assert m.periods_per_year(tf, ac) == pytest.approx(ppy)


def test_annualisation_follows_the_bars_where_they_depart_from_the_calendar():
    import numpy as np

    pytest.importorskip("backtesting")
    from backtesting.test import EURUSD, GOOG

    goog = [t.timestamp() for t in GOOG.index]
    assert m.periods_per_year("1d", "equity", goog) == 252  # 251.8 sessions a year: the calendar's 252
    eur = [t.timestamp() for t in EURUSD.index]  # hourly FX, ~5 days a week around the clock
    assert m.periods_per_year("1h", "equity", eur) == pytest.approx(len(eur) * 365.25 / ((eur[-1] - eur[0]) / 86400
                                                                                         + 1 / 24))
    # six hourly bars a session (the sim's equities) for 20 days: 252 x 6, not 252 x 6.5
    t0 = 1767625200  # 2026-01-05 15:00 UTC, a Monday
    sim = [t0 + d * 86400 + h * 3600 for d in range(20) if (d % 7) < 5 for h in range(6)]
    assert m.periods_per_year("60m", "equity", sim) == 252 * 6
    crypto = list(np.arange(0, 400 * 86400, 3600.0))
    assert m.periods_per_year("1h", "crypto", crypto) == 8760  # 365.25 days observed: the calendar's 365
    assert m.periods_per_year("1h", "crypto", crypto, override=1234) == 1234


def test_portfolio_returns_are_weighted_sums():
    r = np.array([[0.01, 0.03], [-0.02, 0.0]])
    assert m.portfolio_returns(r, np.array([0.5, 0.5])).tolist() == pytest.approx([0.02, -0.01])


def test_too_few_observations_are_nan_not_errors():
    s = m.summary(np.array([0.01]), 252)
    assert s.observations == 1 and math.isnan(s.volatility) and math.isnan(s.sharpe)
    assert s.max_drawdown == 0.0 and s.max_drawdown_duration == 0


# --- equality with empyrical-reloaded ---------------------------------------------------------
ep = pytest.importorskip("empyrical")


def _series(seed: int, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_t(4, n) * 0.012 + 0.0004


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("ppy,rf_annual", [(252, 0.0), (252, 0.04), (8760, 0.02)])
def test_summary_matches_empyrical(seed, ppy, rf_annual):
    r = _series(seed)
    rf = m.rf_per_period(rf_annual, ppy)
    s = m.summary(r, ppy, rf_annual=rf_annual, confidence=0.95)
    assert s.volatility == pytest.approx(ep.annual_volatility(r, annualization=ppy), abs=1e-6)
    assert s.sharpe == pytest.approx(ep.sharpe_ratio(r, risk_free=rf, annualization=ppy), abs=1e-6)
    assert s.sortino == pytest.approx(ep.sortino_ratio(r, required_return=rf, annualization=ppy), abs=1e-6)
    assert s.calmar == pytest.approx(ep.calmar_ratio(r, annualization=ppy), abs=1e-6)
    assert s.cagr == pytest.approx(ep.annual_return(r, annualization=ppy), abs=1e-6)
    assert s.max_drawdown == pytest.approx(ep.max_drawdown(r), abs=1e-6)
    assert s.var_historical == pytest.approx(ep.value_at_risk(r, cutoff=0.05), abs=1e-6)
    assert s.cvar_historical == pytest.approx(ep.conditional_value_at_risk(r, cutoff=0.05), abs=1e-6)


def test_parametric_var_and_cvar_match_quantstats():
    qs_stats = pytest.importorskip("quantstats.stats")
    import pandas as pd

    r = _series(4)
    s = pd.Series(r, index=pd.date_range("2020-01-01", periods=len(r), freq="D"))
    assert m.var_parametric(r, 0.99) == pytest.approx(qs_stats.value_at_risk(s, confidence=0.99), abs=1e-6)
    assert m.cvar_parametric(r, 0.99) == pytest.approx(
        qs_stats.conditional_value_at_risk(s, confidence=0.99), abs=1e-6)


def test_rolling_matches_empyrical():
    r = _series(5, 300)
    roll = m.rolling(r, 60, 252)
    assert len(roll["volatility"]) == 241
    np.testing.assert_allclose(roll["volatility"], ep.roll_annual_volatility(r, 60, annualization=252), atol=1e-6)
    np.testing.assert_allclose(roll["sharpe"], ep.roll_sharpe_ratio(r, 60, annualization=252), atol=1e-6)
    np.testing.assert_allclose(roll["sortino"], ep.roll_sortino_ratio(r, 60, annualization=252), atol=1e-6)
    np.testing.assert_allclose(roll["max_drawdown"], ep.roll_max_drawdown(r, 60), atol=1e-6)


def test_goog_reference_figures():
    path = SHARED / "data" / "prices" / "pyportfolioopt" / "stock_prices.csv"
    if not path.exists():
        pytest.skip("shared price data not available")
    import csv

    with path.open() as fh:
        closes = [float(row["GOOG"]) for row in csv.DictReader(fh) if row["GOOG"]]
    r = m.simple_returns(np.array(closes))[:2147]  # GOOG daily from 2004-08-20, 2,147 returns
    s = m.summary(r, m.periods_per_year("1d"), confidence=0.95)
    assert s.sharpe == pytest.approx(0.881519, abs=1e-6)
    assert s.sortino == pytest.approx(1.354167, abs=1e-6)
    assert s.volatility == pytest.approx(0.344058, abs=1e-6)
    assert s.max_drawdown == pytest.approx(-0.652948, abs=1e-6)
    assert s.var_historical == pytest.approx(-0.030780, abs=1e-6)
    assert s.cvar_historical == pytest.approx(-0.048090, abs=1e-6)
