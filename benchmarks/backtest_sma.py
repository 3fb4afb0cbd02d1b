"""Wall time of the SMA(10/30) crossover on 1,000,000 one-minute bars: tokenomics' fast path
(tokenomics.core.backtest) next to backtesting.py (a dev-only dependency), same bars, fees and
fill convention (next bar's open, 10 bps per side, all-in whole units). Prints JSON figures.

    python benchmarks/backtest_sma.py [--bars N]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np


def bars(n: int, seed: int = 1):
    import pandas as pd

    rng = np.random.default_rng(seed)
    close = np.round(30000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n))), 2)
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0004, (n, 2)))
    return pd.DataFrame({"Open": open_, "High": np.maximum(open_, close) * (1 + wick[:, 0]),
                         "Low": np.minimum(open_, close) * (1 - wick[:, 1]), "Close": close, "Volume": 1.0},
                        index=pd.date_range("2024-01-01", periods=n, freq="1min"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    n = ap.parse_args().bars
    df = bars(n)
    from tokenomics.core.backtest import Costs, sma_crossover

    t0 = time.perf_counter()
    res = sma_crossover(df.Open.to_numpy(), df.Close.to_numpy(), 10, 30, cash=1_000_000.0, costs=Costs(fee=0.001))
    ours = time.perf_counter() - t0

    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    class SmaCross(Strategy):
        def init(self):
            import pandas as pd

            close = pd.Series(self.data.Close)
            self.f = self.I(lambda: close.rolling(10).mean().to_numpy())
            self.s = self.I(lambda: close.rolling(30).mean().to_numpy())

        def next(self):
            if crossover(self.f, self.s):
                if not self.position:
                    self.buy()
            elif crossover(self.s, self.f):
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        stats = Backtest(df, SmaCross, cash=1_000_000, commission=0.001).run()
        theirs = time.perf_counter() - t0
    print(json.dumps({
        "bars": n, "strategy": "SMA(10/30) crossover, long only, next-open fills, 10 bps per side",
        "tokenomics_seconds": round(ours, 4), "backtesting_py_seconds": round(theirs, 3),
        "speedup": round(theirs / ours, 1),
        "trades": {"tokenomics": len(res.closed), "backtesting_py": int(stats["# Trades"])},
        "final_equity": {"tokenomics": round(res.final_equity, 2),
                         "backtesting_py": round(float(stats["Equity Final [$]"]), 2)},
    }))


if __name__ == "__main__":
    main()
