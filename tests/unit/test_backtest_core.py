"""The fast path's fills, costs and sizing by hand, and the metrics of a run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tokenomics.core.backtest import Costs, max_drawdown, run_metrics, run_signals

OPEN = np.array([10.0, 10.0, 11.0, 12.0, 13.0, 12.0])
CLOSE = np.array([10.0, 10.5, 11.5, 12.5, 12.5, 12.0])
ENTRY = np.array([False, True, False, False, False, False])
EXIT = np.array([False, False, False, True, False, False])


def test_next_open_fill_with_fee_and_slippage_by_hand() -> None:
    costs = Costs(fee=0.01, slippage=0.02, fractional=True, lot=1e-6)
    res = run_signals(OPEN, CLOSE, ENTRY, EXIT, cash=1000.0, costs=costs, size=0.5)
    (t,) = res.trades
    buy = 11.0 * 1.02  # bar 2's open, worse by the slippage
    units = math.floor(1000 * 0.5 / (buy * 1.01) / 1e-6) * 1e-6
    sell = 13.0 * 0.98  # bar 4's open, worse by the slippage
    fees = units * buy * 0.01 + units * sell * 0.01
    assert (t.entry_bar, t.exit_bar) == (2, 4)
    assert t.size == pytest.approx(units)
    assert t.entry_price == pytest.approx(buy) and t.exit_price == pytest.approx(sell)
    assert t.pnl == pytest.approx(units * (sell - buy) - fees)
    assert res.fees == pytest.approx(fees)
    assert res.final_equity == pytest.approx(1000 + t.pnl)
    assert res.exposure.tolist() == [False, False, True, True, False, False]
    # marked at the close while held
    assert res.equity[3] == pytest.approx(1000 - units * buy * 0.01 + units * (12.5 - buy))


def test_close_fill_whole_units_and_open_position_at_the_end() -> None:
    entry = np.array([False, False, False, False, True, False])
    res = run_signals(OPEN, CLOSE, entry, np.zeros(6, bool), cash=100.0, costs=Costs(fill="close"))
    (t,) = res.trades
    assert t.entry_bar == 4 and t.entry_price == 12.5 and t.size == 7.0  # int(100 // 12.5) - 1 for eps
    assert t.exit_bar is None and res.closed == []
    assert res.final_equity == pytest.approx(100 + 7 * (12.0 - 12.5))


def test_a_signal_on_the_last_bar_is_not_filled_and_unaffordable_entries_cancel() -> None:
    last = np.array([False] * 5 + [True])
    assert run_signals(OPEN, CLOSE, last, np.zeros(6, bool)).trades == []
    res = run_signals(OPEN, CLOSE, ENTRY, EXIT, cash=5.0, size=1)
    assert res.trades == [] and res.final_equity == 5.0


def test_metrics_by_hand() -> None:
    eq = np.array([110.0, 99.0, 121.0])
    m = run_metrics(eq, start_equity=100.0, periods_per_year=3, pnls=[10.0, -5.0, 20.0],
                    exposure=0.5, traded_notional=330.0, fees=1.234)
    r = np.array([0.1, -0.1, 121 / 99 - 1])
    assert m["total_return"] == pytest.approx(0.21)
    assert m["cagr"] == pytest.approx(0.21)  # exactly one year of 3 periods
    assert m["volatility"] == pytest.approx(np.std(r, ddof=1) * math.sqrt(3))
    assert m["sharpe"] == pytest.approx(r.mean() / np.std(r, ddof=1) * math.sqrt(3))
    assert m["sortino"] == pytest.approx(r.mean() * 3 / (math.sqrt(0.01 / 3) * math.sqrt(3)))
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(6.0)
    assert m["turnover"] == pytest.approx(330 / np.mean([100, 110, 99, 121]))
    assert m["fees"] == 1.23 and m["exposure"] == 0.5


def test_metrics_match_empyrical() -> None:
    empyrical = pytest.importorskip("empyrical")
    rng = np.random.default_rng(3)
    r = rng.normal(0.0005, 0.01, 500)
    eq = 1000 * np.cumprod(1 + r)
    m = run_metrics(eq, start_equity=1000.0, periods_per_year=252, pnls=[], exposure=1.0,
                    traded_notional=0.0, fees=0.0)
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=252), rel=1e-9)
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(r, annualization=252), rel=1e-9)
    assert m["volatility"] == pytest.approx(empyrical.annual_volatility(r, annualization=252), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-9)
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0
