"""Backtest steps per CPU second of the chain strategies (model, sentiment), in one process.

A fresh store at sim step HISTORY (the sim history's bars and the calendar prepared by a first short
backtest, the model loaded), then one backtest of STEPS steps, CPU-timed; `--warm` runs the window once
before the timed run, so the sentiment scores come from the score cache (the "warm cache" figure).
CPU time of this process (time.process_time), not wall time: on a shared machine wall time measures
the neighbours. Prints one JSON object.

    python benchmarks/backtest_speed.py model|sentiment [STEPS=300] [--warm] [--rounds N]
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("strategy", choices=("model", "sentiment"))
    ap.add_argument("steps", type=int, nargs="?", default=300)
    ap.add_argument("--warm", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    strategy, steps, warm, rounds = a.strategy, a.steps, a.warm, a.rounds
    with tempfile.TemporaryDirectory() as d:
        os.environ["TOKENOMICS_LOGS__DIR"] = str(Path(d) / "logs")
        os.environ.setdefault("TOKENOMICS_SIM__HISTORY_STEPS", str(max(steps + 200, 1900)))
        os.chdir(d)
        from tokenomics.research import backtest as replay
        from tokenomics.runtime import Options, Runtime

        rt = Runtime(Options(db=Path(d) / "bench.db"))
        replay.run_backtest(rt, strategy, replay.window(rt, None, None, 20), {})  # bars, calendar, model loaded
        w = replay.window(rt, None, None, steps)
        if warm:
            replay.run_backtest(rt, strategy, w, {})
        cpu = []
        for _ in range(rounds):
            t = time.process_time()
            out = replay.run_backtest(rt, strategy, w, {})
            cpu.append(time.process_time() - t)
        rt.close()
    c = statistics.median(cpu)
    print(json.dumps({"strategy": strategy, "steps": steps, "warm": warm, "rounds": rounds, "cpu_s": round(c, 3),
                      "steps_per_cpu_s": round(steps / c, 1), "orders": len(out["orders"])}))


if __name__ == "__main__":
    main()
