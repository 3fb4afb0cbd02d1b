"""`backtest` over stored bars through the CLI: real daily GOOG (shipped with backtesting.py) and the
shared BTC minute bars, loaded with `fetch-bars --source file`, equal backtesting.py to the cent."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.conftest import SHARED

pd = pytest.importorskip("pandas")
pytest.importorskip("backtesting")

PARITY_ENV = {"TOKENOMICS_CAPITAL": "10000", "TOKENOMICS_BROKER__SLIPPAGE_BPS": "0",
              "TOKENOMICS_BACKTEST__FRACTIONAL": "false", "TOKENOMICS_BACKTEST__FILL": "next_open"}


def reference(df: pd.DataFrame, fast: int, slow: int, commission: float):
    """backtesting.py's SmaCross (its README's strategy, long only: a cross below closes the trade)."""
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):
        def init(self):
            self.f = self.I(SMA, self.data.Close, fast)
            self.s = self.I(SMA, self.data.Close, slow)

        def next(self):
            if crossover(self.f, self.s):
                if not self.position:
                    self.buy()
            elif crossover(self.s, self.f):
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(df, SmaCross, cash=10_000, commission=commission).run()


def assert_same_trades(doc: dict, stats) -> None:
    ref = stats._trades
    ours = [t for t in doc["trades"] if t["exit_at"] is not None]
    assert len(ours) == len(ref) > 5
    assert [t["qty"] for t in ours] == ref.Size.astype(float).tolist()
    assert [t["entry_at"][:19] for t in ours] == [str(x)[:19].replace(" ", "T") for x in ref.EntryTime]
    assert [t["exit_at"][:19] for t in ours] == [str(x)[:19].replace(" ", "T") for x in ref.ExitTime]
    np.testing.assert_allclose([t["entry_price"] for t in ours], ref.EntryPrice, rtol=0, atol=1e-9)
    np.testing.assert_allclose([t["exit_price"] for t in ours], ref.ExitPrice, rtol=0, atol=1e-9)
    np.testing.assert_allclose([t["pnl"] for t in ours], ref.PnL, rtol=0, atol=0.006)
    assert doc["metrics"]["final_equity"] == round(float(stats["Equity Final [$]"]), 2)
    assert doc["equity"][-1][1] == doc["metrics"]["final_equity"]


def test_goog_daily_csv_through_fetch_bars_and_backtest_equals_backtesting_py(cli) -> None:
    from backtesting.test import GOOG

    GOOG.rename_axis("Date").to_csv(cli.cwd / "goog.csv")
    loaded = cli.json("fetch-bars", "--source", "file", "--file", "goog.csv", "--symbol", "GOOG",
                      "--timeframe", "1d")
    assert loaded["new"] == len(GOOG)
    env = {**PARITY_ENV, "TOKENOMICS_BROKER__FEE_BPS": "20"}
    doc = cli.json("backtest", "--strategy", "sma", "--source", "file", "--symbol", "GOOG", "--timeframe", "1d",
                   "--grid", "fast=10", "--grid", "slow=20", env=env)
    assert doc["source"] == "file" and doc["timeframe"] == "1d" and doc["symbols"] == ["GOOG"]
    assert doc["start"].startswith("2004-08-19") and doc["end"].startswith("2013-03-02")  # the stored range
    assert_same_trades(doc, reference(GOOG, 10, 20, commission=0.002))
    bench = doc["benchmark"]  # buy and hold beside the strategy
    assert bench["total_return"] == pytest.approx(GOOG.Close.iloc[-1] / GOOG.Close.iloc[0] - 1, abs=1e-4)
    # the same bars are found without naming them: the store holds one non-sim source and timeframe
    again = cli.json("backtest", "--strategy", "sma", "--grid", "fast=10", "--grid", "slow=20", env=env)
    assert again["metrics"] == doc["metrics"]
    # a window inside the stored range
    part = cli.json("backtest", "--strategy", "sma", "--start", "2010-01-01", "--end", "2012-01-01", env=env)
    assert part["start"] >= "2010-01-01" and part["end"] <= "2012-01-01T00:00:00+00:00"
    assert all("2010-01-01" <= t["entry_at"] < "2012-01-01" for t in part["trades"])


def test_btc_minute_bars_from_shared_equal_backtesting_py(cli) -> None:
    path = SHARED / "data" / "prices" / "freqtrade" / "UNITTEST_BTC-1m.feather"
    if not path.exists():
        pytest.skip("shared BTC minute bars not present")
    import polars as pl

    cli.json("fetch-bars", "--source", "file", "--file", str(path), "--symbol", "BTC/USDT", "--timeframe", "1m")
    doc = cli.json("backtest", "--strategy", "sma", "--source", "file", "--symbol", "BTC/USDT",
                   env={**PARITY_ENV, "TOKENOMICS_BROKER__FEE_BPS": "5"})
    raw = pl.read_ipc(path)
    df = pd.DataFrame({"Open": raw["open"].to_numpy(), "High": raw["high"].to_numpy(), "Low": raw["low"].to_numpy(),
                       "Close": raw["close"].to_numpy(), "Volume": raw["volume"].to_numpy()},
                      index=pd.DatetimeIndex(raw["date"].to_numpy()))
    assert_same_trades(doc, reference(df, 10, 30, commission=0.0005))


def test_sim_world_stays_the_default_and_missing_bars_exit_2(cli) -> None:
    doc = cli.json("backtest", "--strategy", "sma", "--steps", "100")
    assert doc["source"] == "sim"
    proc = cli("backtest", "--strategy", "sma", "--source", "file")
    assert proc.returncode == 2 and "no file bars" in proc.stderr and "fetch-bars" in proc.stderr
