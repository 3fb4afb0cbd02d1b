"""The fast path against backtesting.py on the same bars, fees and fill convention, to a cent."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.conftest import SHARED
from tokenomics.core.backtest import Costs, sma, sma_crossover

pd = pytest.importorskip("pandas")
backtesting = pytest.importorskip("backtesting")


def gbm_bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.004, n))), 2)
    open_ = np.round(np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.001, n)), 2)
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    idx = pd.date_range("2024-01-01", periods=n, freq="1min")
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close, "Volume": 1.0}, index=idx)


def reference(df: pd.DataFrame, fast: int, slow: int, *, commission: float, trade_on_close: bool,
              size: float | None, cash: float = 10_000.0):
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    class SmaCross(Strategy):
        def init(self):
            close = pd.Series(self.data.Close)
            self.f = self.I(lambda: close.rolling(fast).mean().to_numpy())
            self.s = self.I(lambda: close.rolling(slow).mean().to_numpy())

        def next(self):
            if crossover(self.f, self.s):
                if not self.position:
                    self.buy() if size is None else self.buy(size=size)
            elif crossover(self.s, self.f):
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, SmaCross, cash=cash, commission=commission, trade_on_close=trade_on_close)
        return bt.run()


def ours(df: pd.DataFrame, fast: int, slow: int, *, commission: float, trade_on_close: bool,
         size: float | None, cash: float = 10_000.0):
    costs = Costs(fee=commission, fill="close" if trade_on_close else "next_open")
    return sma_crossover(df.Open.to_numpy(), df.Close.to_numpy(), fast, slow, cash=cash, costs=costs, size=size)


def assert_same(stats, res) -> None:
    ref = stats._trades
    closed = res.closed
    assert len(closed) == len(ref) > 5
    assert [t.entry_bar for t in closed] == ref.EntryBar.tolist()
    assert [t.exit_bar for t in closed] == ref.ExitBar.tolist()
    assert [t.size for t in closed] == ref.Size.astype(float).tolist()
    np.testing.assert_allclose([t.entry_price for t in closed], ref.EntryPrice, rtol=0, atol=1e-9)
    np.testing.assert_allclose([t.exit_price for t in closed], ref.ExitPrice, rtol=0, atol=1e-9)
    np.testing.assert_allclose([t.pnl for t in closed], ref.PnL, rtol=0, atol=0.005)
    assert round(res.final_equity, 2) == round(stats["Equity Final [$]"], 2)
    np.testing.assert_allclose(res.equity, stats._equity_curve.Equity.to_numpy(), rtol=0, atol=0.005)


@pytest.mark.parametrize("trade_on_close", [False, True])
@pytest.mark.parametrize("size", [None, 0.5, 7])
def test_sma_crossover_matches_backtesting_py(trade_on_close: bool, size: float | None) -> None:
    df = gbm_bars(3000, seed=11)
    stats = reference(df, 10, 30, commission=0.001, trade_on_close=trade_on_close, size=size)
    res = ours(df, 10, 30, commission=0.001, trade_on_close=trade_on_close, size=size)
    assert_same(stats, res)
    assert res.fees > 0


def test_sma_crossover_matches_backtesting_py_on_real_btc_minutes() -> None:
    path = SHARED / "data" / "prices" / "freqtrade" / "UNITTEST_BTC-1m.feather"
    if not path.exists():
        pytest.skip("shared BTC minute bars not present")
    import polars as pl

    raw = pl.read_ipc(path)
    df = pd.DataFrame({"Open": raw["open"].to_numpy(), "High": raw["high"].to_numpy(),
                       "Low": raw["low"].to_numpy(), "Close": raw["close"].to_numpy(),
                       "Volume": raw["volume"].to_numpy()},
                      index=pd.DatetimeIndex(raw["date"].to_numpy()))
    stats = reference(df, 10, 30, commission=0.0005, trade_on_close=False, size=None)
    res = ours(df, 10, 30, commission=0.0005, trade_on_close=False, size=None)
    assert_same(stats, res)


def test_sma_is_each_window_mean() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    out = sma(x, 3)
    assert np.isnan(out[:2]).all()
    assert out[2:].tolist() == [2.0, 3.0, 17 / 3]


def test_exact_ties_match_backtesting_py_on_eurusd_hourly() -> None:
    """EURUSD 1h, SMA 20/60: a crossing through an exact tie is decided as backtesting.py decides it
    (a tolerance for ties gave 44 trades and 10,564.23 against the reference's 45)."""
    from backtesting.test import EURUSD

    for commission in (0.0, 0.0002):
        stats = reference(EURUSD, 20, 60, commission=commission, trade_on_close=False, size=None)
        res = ours(EURUSD, 20, 60, commission=commission, trade_on_close=False, size=None)
        assert len(res.closed) == 45 or commission
        assert_same(stats, res)


def test_signals_equal_backtesting_py_crossover_on_a_million_bar_walk() -> None:
    """The benchmark's 1,000,000-bar walk: every entry and exit signal is the one backtesting.py's
    `crossover` gives on its strategy's SMAs (pandas rolling means), bar by bar; the trade lists
    once parted at trade 9,837."""
    import sys

    from backtesting.lib import crossover

    from tests.conftest import REPO
    from tokenomics.core.backtest import sma_cross_signals

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from backtest_sma import bars
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    close = bars(1_000_000).Close
    f, s = close.rolling(10).mean().to_numpy(), close.rolling(30).mean().to_numpy()
    entries, exits = sma_cross_signals(close.to_numpy(), 10, 30)
    # backtesting.py evaluates crossover on the arrays up to each bar; only the last two values count
    ref_in = [i for i in range(1, len(f)) if crossover(f[i - 1:i + 1], s[i - 1:i + 1])]
    ref_out = [i for i in range(1, len(f)) if crossover(s[i - 1:i + 1], f[i - 1:i + 1])]
    assert np.flatnonzero(entries).tolist() == ref_in
    assert np.flatnonzero(exits).tolist() == ref_out
    assert len(ref_in) > 19_000
