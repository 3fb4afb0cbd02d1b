"""Price features as polars expressions over one symbol's bars (ts, open, high, low, close, volume).

Every feature at bar t uses bars up to and including t only (point-in-time). The recursive
indicators follow TA-Lib's seeding so values match it to floating-point noise after its
unstable period: EMA seeded with the SMA of its first n values; Wilder RSI and ATR seeded
with the simple mean of their first n changes / true ranges; MACD with the fast EMA seeded at
the slow EMA's first bar; Bollinger bands with the population standard deviation.

polars is imported inside the functions: this module is importable without it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# The model features: scale-free, so one model can serve symbols of any price.
FEATURES: tuple[str, ...] = (
    "ret_1", "ret_5", "ret_20", "close_sma_20", "close_ema_10", "rsi_14", "macd_rel", "macd_hist_rel",
    "bb_pctb", "bb_width", "atr_rel", "rv_20", "volume_z", "hour", "weekday",
)
RETURN_HORIZONS: tuple[int, ...] = (1, 5, 20)
FEATURE_VERSION = 1  # bump when any feature's definition changes: older models then refuse to predict
WARMUP = 100  # bars to drop before using recursive features (TA-Lib's start dependence fades)


def feature_set_id(features: list[str] | tuple[str, ...]) -> str:
    """A short fingerprint of a feature list and the definitions' version: a model refuses any other."""
    return hashlib.sha256(json.dumps([FEATURE_VERSION, list(features)]).encode()).hexdigest()[:16]


def _idx():
    import polars as pl

    return pl.int_range(pl.len())


def sma(x: Any, n: int):
    return x.rolling_mean(n)


def _seeded_ewm(x: Any, alpha: float, seed_at: int, seed: Any):
    """EMA with smoothing alpha whose first value, at row seed_at, is `seed` (rows before: null)."""
    import polars as pl

    idx = _idx()
    start = pl.when(idx < seed_at).then(None).when(idx == seed_at).then(seed).otherwise(x)
    return start.ewm_mean(alpha=alpha, adjust=False, min_samples=1)


def ema(x: Any, n: int, offset: int = 0):
    """TA-Lib EMA: k = 2/(n+1), seeded with the SMA of the first n values (first output at offset+n-1)."""
    return _seeded_ewm(x, 2.0 / (n + 1), offset + n - 1, x.rolling_mean(n))


def wilder(x: Any, n: int, offset: int = 1):
    """Wilder smoothing (alpha 1/n) seeded with the mean of x[offset .. offset+n-1]."""
    return _seeded_ewm(x, 1.0 / n, offset + n - 1, x.rolling_mean(n))


def rsi(close: Any, n: int = 14):
    import polars as pl

    d = close.diff()
    gain = wilder(d.clip(lower_bound=0.0), n)
    loss = wilder((-d).clip(lower_bound=0.0), n)
    total = gain + loss
    return pl.when(total == 0).then(0.0).otherwise(100.0 * gain / total)


def macd(close: Any, fast: int = 12, slow: int = 26, signal: int = 9):
    """(macd, signal, hist) as TA-Lib: both EMAs start at bar slow-1, the signal at slow+signal-2."""
    import polars as pl

    start = slow - 1
    fast_ema = _seeded_ewm(close, 2.0 / (fast + 1), start, close.rolling_mean(fast))
    slow_ema = _seeded_ewm(close, 2.0 / (slow + 1), start, close.rolling_mean(slow))
    line = fast_ema - slow_ema
    sig = ema(line, signal, offset=start)
    line = pl.when(_idx() < start + signal - 1).then(None).otherwise(line)
    return line, sig, line - sig


def bollinger(close: Any, n: int = 20, k: float = 2.0):
    """(lower, middle, upper) with the population standard deviation."""
    mid = close.rolling_mean(n)
    sd = close.rolling_std(n, ddof=0)
    return mid - k * sd, mid, mid + k * sd


def true_range(high: Any, low: Any, close: Any):
    import polars as pl

    prev = close.shift(1)
    tr = pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs())
    return pl.when(prev.is_null()).then(None).otherwise(tr)


def atr(high: Any, low: Any, close: Any, n: int = 14):
    return wilder(true_range(high, low, close), n, offset=1)


def compute(bars: Any, *, keep_raw: bool = True) -> Any:
    """All features of one symbol's bars (a polars DataFrame sorted by ts). Returns a new frame.

    Raw indicators (sma_20, ema_10, rsi_14, macd, macd_signal, macd_hist, bb_lower/mid/upper,
    atr_14) are kept when keep_raw; the model features are listed in FEATURES. The same indicators
    exist one by one as the expression builders above (rsi, macd, bollinger, atr).
    """
    import polars as pl

    df = bars
    if df.schema["ts"] == pl.String:
        df = df.with_columns(pl.col("ts").str.to_datetime(time_zone="UTC"))
    c, h, lo, v = pl.col("close"), pl.col("high"), pl.col("low"), pl.col("volume")
    # staged so every recursive series is computed once (polars does not share them across expressions)
    d = c.diff()
    df = df.with_columns(
        sma(c, 20).alias("sma_20"), ema(c, 10).alias("ema_10"),
        wilder(d.clip(lower_bound=0.0), 14).alias("_gain"), wilder((-d).clip(lower_bound=0.0), 14).alias("_loss"),
        _seeded_ewm(c, 2.0 / 13, 25, c.rolling_mean(12)).alias("_fast"),
        _seeded_ewm(c, 2.0 / 27, 25, c.rolling_mean(26)).alias("_slow"),
        c.rolling_mean(20).alias("bb_mid"), c.rolling_std(20, ddof=0).alias("_sd"),
        atr(h, lo, c, 14).alias("atr_14"),
    )
    total = pl.col("_gain") + pl.col("_loss")
    df = df.with_columns(
        pl.when(total == 0).then(0.0).otherwise(100.0 * pl.col("_gain") / total).alias("rsi_14"),
        (pl.col("_fast") - pl.col("_slow")).alias("_line"),
        (pl.col("bb_mid") - 2.0 * pl.col("_sd")).alias("bb_lower"),
        (pl.col("bb_mid") + 2.0 * pl.col("_sd")).alias("bb_upper"),
    )
    df = df.with_columns(
        pl.when(_idx() < 33).then(None).otherwise(pl.col("_line")).alias("macd"),
        ema(pl.col("_line"), 9, offset=25).alias("macd_signal"),
    ).drop("_gain", "_loss", "_fast", "_slow", "_sd", "_line")
    df = df.with_columns((pl.col("macd") - pl.col("macd_signal")).alias("macd_hist"))
    logret = (c / c.shift(1)).log()
    width = pl.col("bb_upper") - pl.col("bb_lower")
    df = df.with_columns(
        *[(c / c.shift(k) - 1.0).alias(f"ret_{k}") for k in RETURN_HORIZONS],
        (c / pl.col("sma_20") - 1.0).alias("close_sma_20"),
        (c / pl.col("ema_10") - 1.0).alias("close_ema_10"),
        (pl.col("macd") / c).alias("macd_rel"),
        (pl.col("macd_hist") / c).alias("macd_hist_rel"),
        pl.when(width == 0).then(0.5).otherwise((c - pl.col("bb_lower")) / width).alias("bb_pctb"),
        (width / pl.col("bb_mid")).alias("bb_width"),
        (pl.col("atr_14") / c).alias("atr_rel"),
        logret.rolling_std(20).alias("rv_20"),
        pl.when(v.rolling_std(20) == 0).then(0.0)
        .otherwise((v - v.rolling_mean(20)) / v.rolling_std(20)).alias("volume_z"),
        pl.col("ts").dt.hour().cast(pl.Float64).alias("hour"),
        pl.col("ts").dt.weekday().cast(pl.Float64).alias("weekday"),
    )
    if not keep_raw:
        df = df.select(["ts", *FEATURES])
    return df
