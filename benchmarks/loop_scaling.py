"""Does the loop's cost per tick grow with the store? Runs the sim loop's tick in-process on a fresh
store and prints the CPU milliseconds per tick over a window of ticks ending at 1k, 2k, ... N ticks,
and the ratio of the last window to the one at 1k (goal <= 1.1, issue 16).

CPU time of this process (time.process_time), not wall time: on a shared machine wall time
measures the neighbours.

    python benchmarks/loop_scaling.py [TICKS=10000] [WINDOW=200]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with tempfile.TemporaryDirectory() as d:
        os.environ["TOKENOMICS_LOGS__DIR"] = str(Path(d) / "logs")
        from tokenomics.runtime import Options, Runtime
        from tokenomics.trading.loop import tick

        rt = Runtime(Options(db=Path(d) / "loop.db"))
        stop = threading.Event()
        marks = sorted({*range(1000, ticks + 1, 1000), ticks} - {0})
        rows = []
        start_cpu = time.process_time()
        window_cpu = 0.0
        for n in range(1, ticks + 1):
            t = time.process_time()
            tick(rt, n, stop)
            if any(m - window < n <= m for m in marks):
                window_cpu += time.process_time() - t
            if n in marks:
                rows.append({"ticks": n, "cpu_ms_per_tick": round(window_cpu / min(window, n) * 1000, 2),
                             "store_mb": round(os.path.getsize(rt.db_path) / 1e6, 1)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                window_cpu = 0.0
        total = time.process_time() - start_cpu
        rt.close()
    first, last = rows[0]["cpu_ms_per_tick"], rows[-1]["cpu_ms_per_tick"]
    print(json.dumps({"ticks": ticks, "window": window, "total_cpu_s": round(total, 1), "rows": rows,
                      f"ratio_{rows[-1]['ticks']}_vs_{rows[0]['ticks']}": round(last / first, 2), "goal_ratio": 1.1},
                     indent=2))


if __name__ == "__main__":
    main()
