"""Wall time of the SMA(10/30) crossover on 1,000,000 one-minute bars: tokenomics' fast path
(tokenomics.core.backtest) next to backtesting.py (a dev-only dependency), same bars, fees and fill
convention (next bar's open, 10 bps per side), trading every signal: one whole unit per trade with
cash to spare, so no entry is ever skipped for lack of equity (all-in sizing once starved the walk
at bar 539,298 and only 2,516 of 19,375 signals traded). Prints JSON figures:

- in process: the backtest call alone, both libraries already imported;
- per new process: a fresh Python that imports the library, reads the same bars file and runs;
- the CLI path: `fetch-bars --source file` of the bars, then `backtest --strategy sma` (all in, fractional
  units), beside backtesting.py's per-process time.

    python benchmarks/backtest_sma.py [--bars N] [--no-cli]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

CASH = 1e9  # one unit (~30,000) always affordable
SIZE = 1  # whole units per trade


def bars(n: int, seed: int = 1):
    import pandas as pd

    rng = np.random.default_rng(seed)
    close = np.round(30000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n))), 2)
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0004, (n, 2)))
    return pd.DataFrame({"Open": open_, "High": np.maximum(open_, close) * (1 + wick[:, 0]),
                         "Low": np.minimum(open_, close) * (1 - wick[:, 1]), "Close": close, "Volume": 1.0},
                        index=pd.date_range("2024-01-01", periods=n, freq="1min"))


def load(path: str):
    import pandas as pd

    z = np.load(path)
    return pd.DataFrame({k: z[k] for k in ("Open", "High", "Low", "Close", "Volume")},
                        index=pd.to_datetime(z["ts"]))


def ours(df):
    from tokenomics.core.backtest import Costs, sma_crossover

    return sma_crossover(df.Open.to_numpy(), df.Close.to_numpy(), 10, 30, cash=CASH, costs=Costs(fee=0.001),
                         size=SIZE)


def theirs(df):
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
                    self.buy(size=SIZE)
            elif crossover(self.s, self.f):
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(df, SmaCross, cash=CASH, commission=0.001).run()


def fresh(which: str, path: Path) -> float:
    """Wall time of a new process that imports, reads the bars and runs one side."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import backtest_sma as b; "
            f"b.{which}(b.load({str(path)!r}))")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def cli(args: list[str], cwd: Path, env: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tokenomics.cli", *args, "--json"], cwd=cwd, env=env,
                          capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return took, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI path (fetch-bars + backtest)")
    a = ap.parse_args()
    n = a.bars
    df = bars(n)
    ours(df.iloc[:1000])  # imports, outside the timing
    t0 = time.perf_counter()
    res = ours(df)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    stats = theirs(df)
    theirs_s = time.perf_counter() - t0
    out = {
        "bars": n, "strategy": "SMA(10/30) crossover, long only, next-open fills, 10 bps per side, 1 unit a trade",
        "signals": int(np.count_nonzero(np.diff((df.Close.rolling(10).mean() > df.Close.rolling(30).mean())
                                                .to_numpy().astype(int)) == 1)),
        "closed_trades": {"tokenomics": len(res.closed), "backtesting_py": int(stats["# Trades"])},
        "final_equity": {"tokenomics": round(res.final_equity, 2),
                         "backtesting_py": round(float(stats["Equity Final [$]"]), 2)},
        "in_process_seconds": {"tokenomics": round(ours_s, 4), "backtesting_py": round(theirs_s, 3)},
        "in_process_speedup": round(theirs_s / ours_s, 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        npz = cwd / "bars.npz"
        np.savez(npz, ts=df.index.to_numpy(), **{c: df[c].to_numpy() for c in df.columns})
        ours_p, theirs_p = fresh("ours", npz), fresh("theirs", npz)
        out["per_process_seconds"] = {"tokenomics": round(ours_p, 2), "backtesting_py": round(theirs_p, 2)}
        out["per_process_speedup"] = round(theirs_p / ours_p, 1)
        if not a.no_cli:
            import polars as pl

            path = cwd / "bars.parquet"
            pl.DataFrame({"ts": df.index.to_numpy(), **{c.lower(): df[c].to_numpy() for c in df.columns}}
                         ).write_parquet(path)
            env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENOMICS_")}
            env.update(TOKENOMICS_STORE__PATH=str(cwd / "store.db"), TOKENOMICS_LOGS__DIR=str(cwd / "logs"),
                       TOKENOMICS_CAPITAL=str(int(CASH)), TOKENOMICS_BROKER__FEE_BPS="10",
                       TOKENOMICS_BROKER__SLIPPAGE_BPS="0")
            load, _ = cli(["fetch-bars", "--source", "file", "--file", str(path), "--symbol", "BTC/USD", "-t", "1m"],
                          cwd, env)
            run, doc = cli(["backtest", "--strategy", "sma", "--source", "file"], cwd, env)
            out["cli"] = {"fetch_bars_seconds": round(load, 2), "backtest_seconds": round(run, 2),
                          "trades": len(doc["trades"]), "backtesting_py_per_process_seconds": round(theirs_p, 2),
                          "speedup_backtest_vs_backtesting_py": round(theirs_p / run, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
