"""Grid throughput (cells per second) of `backtest --grid`'s path through each executor, next to
backtesting.py's `optimize()` on the same bars and the same grid. Prints JSON figures.

    python benchmarks/sweeps.py [--steps 5000] [--workers 2] [--no-ray]

The grid is the SMA crossover over fast = 5, 10, ... 50 and slow = 60, 80, ... 240 (100 cells) on one
symbol's hourly sim bars. A tokenomics cell is what a sweep really runs (`research.sweeps.run_cells`:
open the store, load the bars, run the numpy fast path, compute the metrics, save the row); on Ray
it also ships the store once through the object store and saves the rows here. backtesting.py's
`optimize()` runs its own process pool over an in-memory DataFrame and saves nothing. Ray's
start-up (a local Ray with `--workers` CPUs) is timed apart from the grid.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

FAST = list(range(5, 55, 5))
SLOW = list(range(60, 260, 20))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backtest_grid import SmaCross  # noqa: E402  (the same reference strategy; None without backtesting.py)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def backtesting_py(rt, w, symbol: str, fee: float) -> dict:
    import pandas as pd
    from backtesting import Backtest

    from tokenomics.store import iso

    rows = rt.store.all("SELECT ts, open, high, low, close FROM bars WHERE source = 'sim' AND symbol = ? "
                        "AND ts >= ? AND ts <= ? ORDER BY ts",
                        [symbol, iso(rt.world.time_of(w.first)), iso(rt.world.time_of(w.last - 1))])
    df = pd.DataFrame({"Open": [r["open"] for r in rows], "High": [r["high"] for r in rows],
                       "Low": [r["low"] for r in rows], "Close": [r["close"] for r in rows], "Volume": 1.0},
                      index=pd.to_datetime([r["ts"] for r in rows]))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, SmaCross, cash=float(rt.settings.capital), commission=fee, finalize_trades=True)
        stats, seconds = timed(lambda: bt.optimize(fast=FAST, slow=SLOW, maximize="Sharpe Ratio"))
    cells = len(FAST) * len(SLOW)
    return {"seconds": round(seconds, 3), "cells_per_second": round(cells / seconds, 1), "bars": len(df),
            "best": {"fast": int(stats._strategy.fast), "slow": int(stats._strategy.slow)},
            "note": "backtesting.py's own process pool, in-memory DataFrame, saves nothing"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000, help="hourly sim bars in the window")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--symbol", default="ETH/USD")
    ap.add_argument("--no-ray", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tokenomics-bench-sweeps-"))
    os.chdir(tmp)
    for k in [k for k in os.environ if k.startswith("TOKENOMICS_")]:
        del os.environ[k]
    os.environ["TOKENOMICS_SIM__HISTORY_STEPS"] = str(a.steps + 10)
    os.environ["TOKENOMICS_LOGS__DIR"] = str(tmp / "logs")
    os.environ["TOKENOMICS_STORE__PATH"] = str(tmp / "bench.db")

    from tokenomics.executors import InlineExecutor, LocalProcessExecutor, RayExecutor
    from tokenomics.research import backtest as replay
    from tokenomics.research import sweeps
    from tokenomics.runtime import Options, Runtime

    rt = Runtime(Options(db=tmp / "bench.db"))
    w = replay.window(rt, None, None, a.steps)
    combos = [{"symbol": a.symbol, "fast": f, "slow": s} for f in FAST for s in SLOW]
    _, prep = timed(lambda: sweeps.prepare(rt, "sma", w))
    out: dict = {"cells": len(combos), "steps": a.steps, "symbol": a.symbol, "workers": a.workers,
                 "cpus": os.cpu_count(), "store_bars_seconds": round(prep, 2), "executors": {}}
    reference = None
    runs = [("inline", InlineExecutor()), ("process_pool", LocalProcessExecutor(a.workers))]
    if not a.no_ray:
        runs.append(("ray_local", RayExecutor(workers=a.workers)))
    for name, ex in runs:
        extra = {}
        try:
            if name == "ray_local":
                _, start = timed(lambda: ex.map(len, [[1]]))
                extra["start_seconds"] = round(start, 2)
            rows, seconds = timed(lambda: sweeps.run_cells(rt, ex, "sma", w, combos))
        finally:
            ex.close()
        strip = [{k: v for k, v in r.items() if k != "id"} for r in rows]
        reference = reference or strip
        out["executors"][name] = {"seconds": round(seconds, 3), "cells_per_second": round(len(rows) / seconds, 1),
                                  "same_rows_as_inline": strip == reference, **extra}
        print(f"{name}: {len(rows) / seconds:.1f} cells/s", file=sys.stderr)
    best = max(reference, key=lambda r: r["sharpe"] if r["sharpe"] is not None else float("-inf"))
    out["tokenomics_best"] = {"fast": best["fast"], "slow": best["slow"]}
    if SmaCross is None:
        out["backtesting_py_optimize"] = "not installed (pip install backtesting)"
    else:
        bt = backtesting_py(rt, w, a.symbol, rt.settings.broker.fee_bps / 1e4)
        out["backtesting_py_optimize"] = bt
        fastest = max(v["cells_per_second"] for v in out["executors"].values())
        out["ratio_best_executor_vs_optimize"] = round(fastest / bt["cells_per_second"], 2)
    rt.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
