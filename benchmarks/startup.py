"""Start-up time of the CLI and per-tick overhead of the sim loop. Prints JSON figures."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(cmd: list[str], env: dict, cwd: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TOKENOMICS_STORE__PATH": str(Path(tmp) / "b.db"),
               "TOKENOMICS_LOGS__DIR": str(Path(tmp) / "logs")}
        cli = [sys.executable, "-m", "tokenomics.cli"]
        helps = wall(cli + ["--help"], env, tmp, 5)
        status = wall(cli + ["status", "--json"], env, tmp, 3)
        t = time.perf_counter()
        proc = subprocess.run(cli + ["run", "--loop", "--ticks", str(ticks), "--interval", "0", "--json"],
                              env=env, cwd=tmp, capture_output=True, text=True, check=True)
        total = time.perf_counter() - t
        summary = json.loads(proc.stdout)
        one = wall(cli + ["run", "--once", "--interval", "0", "--json"], env, tmp, 3)
    per_tick = (total - statistics.median(one)) / max(ticks - 1, 1)
    print(json.dumps({
        "help_seconds_median": round(statistics.median(helps), 3),
        "status_seconds_median": round(statistics.median(status), 3),
        "run_once_seconds_median": round(statistics.median(one), 3),
        "loop_ticks": ticks,
        "loop_seconds": round(total, 2),
        "per_tick_ms": round(per_tick * 1000, 1),
        "opened": summary["opened"], "closed": summary["closed"], "equity": summary["equity"],
    }, indent=2))


if __name__ == "__main__":
    main()
