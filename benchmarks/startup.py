"""Issue 16's table: the cron-style commands' start-up cost as ratios to `python -c pass`, the loop's
cost per 1,000 ticks late vs early, and the chain backtests' steps per CPU second, goals beside.

CPU seconds (user + system of the child, from wait4) and peak RSS of each process; medians of
interleaved rounds (each round runs every command once, so a noisy neighbour hits them alike).
CPU time, not wall time: on a shared machine wall time measures the neighbours. `run_once_far` is
`run --once` on a store whose sim clock is at step 10,500 (a process must not rebuild the price path
from step 0). The loop and backtest figures come from benchmarks/loop_scaling.py (TICKS, window 1,000)
and benchmarks/backtest_speed.py, run as children.

    python benchmarks/startup.py [ROUNDS=5] [--ticks 10000 | --no-loop] [--markdown]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PY = sys.executable
CLI = [PY, "-m", "tokenomics.cli"]
CHAIN = [["fetch-news", "--advance", "1"], ["score"], ["signal"], ["size"], ["trade"], ["check-exits"]]

# what -> (goal CPU s, goal MB) from issue 16; None where the issue sets none
GOALS = {"status": (0.25, 45), "score_cold": (0.35, None), "run_once": (0.6, None), "run_once_far": (0.6, None)}
HERE = Path(__file__).resolve().parent


def measure(cmd: list[str], env: dict, cwd: str) -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of one child process."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def fresh_env(tmp: Path, name: str) -> dict:
    return {**os.environ, "TOKENOMICS_STORE__PATH": str(tmp / f"{name}.db"),
            "TOKENOMICS_LOGS__DIR": str(tmp / "logs"), "TOKENOMICS_SIM__TICK_SECONDS": "0"}


def child_json(args: list[str]) -> dict:
    out = subprocess.run([PY, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {out.returncode}: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("rounds", type=int, nargs="?", default=5)
    ap.add_argument("--ticks", type=int, default=10_000, help="loop ticks for the scaling figure")
    ap.add_argument("--no-loop", action="store_true", help="leave out the loop-scaling figure (minutes of CPU)")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown on stderr")
    opts = ap.parse_args()
    rounds = opts.rounds
    cpu: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {}

    def add(key: str, fig: tuple[float, float]) -> None:
        cpu.setdefault(key, []).append(fig[0])
        rss.setdefault(key, []).append(fig[1])

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        warm = fresh_env(tmp, "warm")  # a store with its calendar cached, as every store has after a first run
        measure(CLI + ["run", "--once"], warm, d)
        far = {**fresh_env(tmp, "far"), "TOKENOMICS_SIM__HISTORY_STEPS": "10500"}
        measure(CLI + ["run", "--once"], far, d)  # (its calendar cached, as on any store after a first run)
        for r in range(rounds):
            add("python -c pass", measure([PY, "-c", "pass"], warm, d))
            add("--help", measure(CLI + ["--help"], warm, d))
            env = fresh_env(tmp, f"status{r}")  # a fresh store: status creates it
            add("status", measure(CLI + ["status", "--json"], env, d))
            env = fresh_env(tmp, f"score{r}")
            measure(CLI + ["fetch-news", "--advance", "1"], env, d)
            add("score_cold", measure(CLI + ["score", "--json"], env, d))
            add("run_once", measure(CLI + ["run", "--once", "--json"], warm, d))
            add("run_once_far", measure(CLI + ["run", "--once", "--json"], far, d))
            chain = [measure(CLI + args + ["--json"], warm, d) for args in CHAIN]
            add("cron_chain", (sum(c for c, _ in chain), max(m for _, m in chain)))
    base = statistics.median(cpu["python -c pass"])
    rows = []
    for key in cpu:
        c, m = statistics.median(cpu[key]), statistics.median(rss[key])
        goal = GOALS.get(key, (None, None))
        rows.append({"what": key, "cpu_s": round(c, 3), "x_python": round(c / base, 1), "rss_mb": round(m, 1),
                     "goal_cpu_s": goal[0], "goal_x_python": round(goal[0] / base, 1) if goal[0] else None,
                     "goal_rss_mb": goal[1]})
    ratio = statistics.median(cpu["cron_chain"]) / statistics.median(cpu["run_once"])
    extra = []
    if not opts.no_loop:
        loop = child_json([str(HERE / "loop_scaling.py"), str(opts.ticks), "1000"])
        first, last = loop["rows"][0], loop["rows"][-1]
        extra.append({"what": f"loop CPU per 1,000 ticks, ticks {last['ticks'] // 1000 - 1}-{last['ticks'] // 1000}k "
                              f"vs 0-1k", "figure": f"{first['cpu_ms_per_tick']:.2f} -> {last['cpu_ms_per_tick']:.2f} "
                              "ms/tick", "ratio": round(last["cpu_ms_per_tick"] / first["cpu_ms_per_tick"], 2),
                      "goal": "<= 1.1x"})
    model = child_json([str(HERE / "backtest_speed.py"), "model", "300"])
    extra.append({"what": "model backtest", "figure": f"{model['steps_per_cpu_s']} steps per CPU-s",
                  "steps_per_cpu_s": model["steps_per_cpu_s"], "goal": ">= 200"})
    senti = child_json([str(HERE / "backtest_speed.py"), "sentiment", "300", "--warm"])
    extra.append({"what": "sentiment backtest, warm cache", "figure": f"{senti['steps_per_cpu_s']} steps per CPU-s",
                  "steps_per_cpu_s": senti["steps_per_cpu_s"], "goal": ">= 300"})
    doc = {"rounds": rounds, "python_c_pass_cpu_s": round(base, 3), "rows": rows,
           "cron_chain_over_run_once": round(ratio, 2), "goal_cron_chain_over_run_once": 1.5, "chain": extra}
    print(json.dumps(doc, indent=2))
    if opts.markdown:
        lines = ["| what | CPU s | x python -c pass | RSS MB | goal |", "|---|---|---|---|---|"]
        for r in rows:
            goal = f"<= {r['goal_cpu_s']} s ({r['goal_x_python']}x)" if r["goal_cpu_s"] else ""
            goal += f", <= {r['goal_rss_mb']} MB" if r["goal_rss_mb"] else ""
            lines.append(f"| {r['what']} | {r['cpu_s']} | {r['x_python']} | {r['rss_mb']} | {goal} |")
        lines.append(f"| cron chain (6 processes) / run --once | | {doc['cron_chain_over_run_once']}x | | <= 1.5x |")
        for e in extra:
            lines.append(f"| {e['what']} | {e['figure']} | {e.get('ratio', '')} | | {e['goal']} |")
        print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    main()
