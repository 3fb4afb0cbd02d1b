"""Time to compute every feature on 1,000,000 bars with tokenomics (polars) vs TA-Lib (+ numpy).

Prints JSON: seconds for each (best of 3) and the ratio ours / TA-Lib.
Run: PYTHONPATH=src python benchmarks/features.py [n_bars]
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone

import numpy as np
import polars as pl
import talib

from tokenomics.core import features as F

START = datetime(2020, 1, 1, tzinfo=timezone.utc)


def bars(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    return pl.DataFrame({
        "ts": pl.int_range(0, n, eager=True) * 60_000_000 + int(START.timestamp() * 1e6),
        "open": open_, "high": np.maximum(open_, close) * 1.001, "low": np.minimum(open_, close) * 0.999,
        "close": close, "volume": rng.lognormal(10, 0.5, n),
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def with_talib(df: pl.DataFrame) -> dict:
    o, h, lo, c, v = (df[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    out = {}
    for k in F.RETURN_HORIZONS:
        r = np.full_like(c, np.nan)
        r[k:] = c[k:] / c[:-k] - 1
        out[f"ret_{k}"] = r
    out["sma_20"] = talib.SMA(c, 20)
    out["ema_10"] = talib.EMA(c, 10)
    out["rsi_14"] = talib.RSI(c, 14)
    out["macd"], out["macd_signal"], out["macd_hist"] = talib.MACD(c, 12, 26, 9)
    up, mid, low = talib.BBANDS(c, 20, 2, 2)
    out["bb_pctb"] = (c - low) / (up - low)
    out["bb_width"] = (up - low) / mid
    out["atr_rel"] = talib.ATR(h, lo, c, 14) / c
    lr = np.r_[np.nan, np.diff(np.log(c))]
    out["rv_20"] = talib.STDDEV(lr, 20, 1) * np.sqrt(20 / 19)
    out["volume_z"] = (v - talib.SMA(v, 20)) / (talib.STDDEV(v, 20, 1) * np.sqrt(20 / 19))
    ts = df["ts"]
    out["hour"], out["weekday"] = ts.dt.hour().to_numpy(), ts.dt.weekday().to_numpy()
    return out


def best(fn, df, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(df)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    df = bars(n)
    ours = best(F.compute, df)
    ref = best(with_talib, df)
    print(json.dumps({"bars": n, "features": len(F.FEATURES), "tokenomics_polars_s": round(ours, 4),
                      "talib_numpy_s": round(ref, 4), "ratio_tokenomics_over_talib": round(ours / ref, 2)}))


if __name__ == "__main__":
    main()
