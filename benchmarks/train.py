"""Time to train the default model (RandomForest, ml.params, 5-fold walk-forward CV + the final fit) on
100,000 bars, in process, with the code `tokenomics train` runs. Prints JSON figures.

Run: PYTHONPATH=src python benchmarks/train.py [n_bars]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from tokenomics.research import ml
from tokenomics.config import Settings
from tokenomics.core import features as F
from tokenomics.store import Store, iso


def fill(store: Store, n: int) -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    t0 = datetime(2020, 1, 1, tzinfo=timezone.utc)
    rows = [{"source": "bench", "symbol": "BTC/USD", "timeframe": "1m", "ts": iso(t0 + timedelta(minutes=i)),
             "open": float(close[i - 1] if i else close[0]), "high": float(close[i] * 1.001),
             "low": float(close[i] * 0.999), "close": float(close[i]), "volume": float(rng.lognormal(5, 0.3))}
            for i in range(n)]
    with store.tx():
        store.insert_ignore("bars", rows)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    s = Settings().ml
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        fill(store, n)
        t0, c0 = time.perf_counter(), time.process_time()
        card = ml.train(store, name="bench", source="bench", symbols=["BTC/USD"], timeframe="1m",
                        features=list(F.FEATURES), classifier=s.classifier, params=dict(s.params), horizon=s.horizon,
                        threshold_pct=s.threshold_pct, cv=s.cv, folds=s.folds, embargo=s.embargo,
                        min_probability=s.min_probability, cost_rate=0.0015, models_dir=Path(tmp) / "models",
                        now=datetime.now(timezone.utc))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        store.close()
    print(json.dumps({"bars": n, "rows": card["rows"], "folds": len(card["metrics"]["folds"]),
                      "classifier": s.classifier, "params": s.params, "cpus": os.cpu_count(),
                      "train_seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                      "load_average_1m": round(os.getloadavg()[0], 2), "mean_roc_auc": card["metrics"]["mean"].get("roc_auc")}))


if __name__ == "__main__":
    main()
