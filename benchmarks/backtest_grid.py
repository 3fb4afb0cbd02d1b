"""A 20-combination SMA sweep on 20,000 one-minute bars: `tokenomics backtest --grid` through the CLI
(bars loaded with `fetch-bars --source file`, a new process, as a user runs it) next to backtesting.py's
`Backtest.optimize()` over the same grid, bars, fees and fills. Prints JSON figures and the ratio.

    python benchmarks/backtest_grid.py [--bars N] [--workers W]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backtest_sma import bars  # noqa: E402  (the same walk)

FAST, SLOW = [5, 10, 15, 20], [30, 40, 50, 60, 70]

try:  # backtesting.py pickles the strategy class for its worker processes: it lives at module level
    from backtesting import Strategy
    from backtesting.lib import crossover

    class SmaCross(Strategy):
        fast, slow = 10, 30

        def init(self):
            import pandas as pd

            close = pd.Series(self.data.Close)
            self.f = self.I(lambda: close.rolling(self.fast).mean().to_numpy())
            self.s = self.I(lambda: close.rolling(self.slow).mean().to_numpy())

        def next(self):
            if crossover(self.f, self.s):
                if not self.position:
                    self.buy()
            elif crossover(self.s, self.f):
                self.position.close()
except ImportError:  # a dev-only dependency
    SmaCross = None


def cpu() -> float:
    """CPU seconds of this process and its finished children (wall time on a shared machine waits)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def cli(args: list[str], cwd: Path, env: dict) -> tuple[float, float, dict]:
    t0, c0 = time.perf_counter(), cpu()
    proc = subprocess.run([sys.executable, "-m", "tokenomics.cli", *args, "--json"], cwd=cwd, env=env,
                          capture_output=True, text=True)
    took, used = time.perf_counter() - t0, cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return took, used, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    df = bars(a.bars)
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        df.rename_axis("ts").reset_index().to_csv(cwd / "bars.csv", index=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENOMICS_")}
        env.update(TOKENOMICS_STORE__PATH=str(cwd / "store.db"), TOKENOMICS_LOGS__DIR=str(cwd / "logs"),
                   TOKENOMICS_CAPITAL="1000000", TOKENOMICS_BROKER__FEE_BPS="10", TOKENOMICS_BROKER__SLIPPAGE_BPS="0",
                   TOKENOMICS_BACKTEST__FRACTIONAL="false")
        load, _, _ = cli(["fetch-bars", "--source", "file", "--file", "bars.csv", "--symbol", "BTC/USD", "-t", "1m"],
                      cwd, env)
        grid = ["--grid", "fast=" + ",".join(map(str, FAST)), "--grid", "slow=" + ",".join(map(str, SLOW))]
        ours, ours_cpu, doc = cli(["backtest", "--strategy", "sma", *grid, "--workers", str(a.workers)], cwd, env)
    from backtesting import Backtest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0, c0 = time.perf_counter(), cpu()
        _, heat = Backtest(df, SmaCross, cash=1_000_000, commission=0.001).optimize(
            fast=FAST, slow=SLOW, maximize="Equity Final [$]", return_heatmap=True)
        theirs, theirs_cpu = time.perf_counter() - t0, cpu() - c0
    best_ours = max(doc["rows"], key=lambda r: r["final_equity"])
    print(json.dumps({
        "bars": a.bars, "combinations": len(doc["rows"]), "workers": a.workers,
        "tokenomics_fetch_bars_seconds": round(load, 2), "tokenomics_grid_cli_seconds": round(ours, 2),
        "backtesting_py_optimize_seconds": round(theirs, 2), "speedup": round(theirs / ours, 1),
        "cpu_seconds": {"tokenomics_cli": round(ours_cpu, 2), "backtesting_py": round(theirs_cpu, 2)},
        "cpu_speedup": round(theirs_cpu / ours_cpu, 1),
        "best": {"tokenomics": [best_ours["fast"], best_ours["slow"], best_ours["final_equity"]],
                 "backtesting_py": [*map(int, heat.idxmax()), round(float(heat.max()), 2)]},
    }))


if __name__ == "__main__":
    main()
