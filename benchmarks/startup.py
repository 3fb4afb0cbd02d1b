"""Start-up cost of the cron-style commands, as ratios to `python -c pass`, with the goals beside.

CPU seconds (user + system of the child, from wait4) and peak RSS of each process; medians of
interleaved rounds (each round runs every command once, so a noisy neighbour hits them alike).
CPU time, not wall time: on a shared machine wall time measures the neighbours.

    python benchmarks/startup.py [ROUNDS]
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
GOALS = {"status": (0.25, 45), "score_cold": (0.35, None), "run_once": (0.6, None)}


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


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    cpu: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {}

    def add(key: str, fig: tuple[float, float]) -> None:
        cpu.setdefault(key, []).append(fig[0])
        rss.setdefault(key, []).append(fig[1])

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        warm = fresh_env(tmp, "warm")  # a store with its calendar cached, as every store has after a first run
        measure(CLI + ["run", "--once"], warm, d)
        for r in range(rounds):
            add("python -c pass", measure([PY, "-c", "pass"], warm, d))
            add("--help", measure(CLI + ["--help"], warm, d))
            env = fresh_env(tmp, f"status{r}")  # a fresh store: status creates it
            add("status", measure(CLI + ["status", "--json"], env, d))
            env = fresh_env(tmp, f"score{r}")
            measure(CLI + ["fetch-news", "--advance", "1"], env, d)
            add("score_cold", measure(CLI + ["score", "--json"], env, d))
            add("run_once", measure(CLI + ["run", "--once", "--json"], warm, d))
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
    print(json.dumps({"rounds": rounds, "python_c_pass_cpu_s": round(base, 3), "rows": rows,
                      "cron_chain_over_run_once": round(ratio, 2), "goal_cron_chain_over_run_once": 1.5},
                     indent=2))


if __name__ == "__main__":
    main()
