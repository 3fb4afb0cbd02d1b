"""Features: equal to TA-Lib after its unstable period, and point-in-time (the future never leaks)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from tests.conftest import SHARED
from tokenomics.core import features as F

talib = pytest.importorskip("talib")
BTC_1M = SHARED / "data" / "prices" / "freqtrade" / "UNITTEST_BTC-1m.feather"


def random_walk(n: int = 3000, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, n)))
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return pl.DataFrame({
        "ts": [start + timedelta(minutes=i) for i in range(n)], "open": open_, "high": high, "low": low,
        "close": close, "volume": rng.lognormal(10, 0.5, n),
    })


def talib_reference(df: pl.DataFrame) -> dict[str, np.ndarray]:
    o, h, lo, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
    macd, sig, hist = talib.MACD(c, 12, 26, 9)
    upper, mid, lower = talib.BBANDS(c, 20, 2, 2)
    return {
        "sma_20": talib.SMA(c, 20), "ema_10": talib.EMA(c, 10), "rsi_14": talib.RSI(c, 14),
        "macd": macd, "macd_signal": sig, "macd_hist": hist,
        "bb_upper": upper, "bb_mid": mid, "bb_lower": lower, "atr_14": talib.ATR(h, lo, c, 14),
    }


def assert_matches_talib(df: pl.DataFrame) -> None:
    ours = F.compute(df)
    for name, ref in talib_reference(df).items():
        got = ours[name].to_numpy().astype(float)
        # warm-up rows agree too: null where TA-Lib has NaN
        first = int(np.argmax(~np.isnan(ref)))
        assert np.isnan(got[:first]).all(), name
        # after the unstable period, equal to 1e-8 (relative to the price scale)
        scale = max(1.0, float(np.nanmax(np.abs(ref))))
        np.testing.assert_allclose(got[F.WARMUP:], ref[F.WARMUP:], rtol=1e-8, atol=1e-8 * scale, err_msg=name)


def test_indicators_equal_talib_on_a_random_walk():
    assert_matches_talib(random_walk())


def test_indicators_equal_talib_on_real_btc_minute_bars():
    if not BTC_1M.exists():
        pytest.skip("shared freqtrade data absent")
    df = pl.read_ipc(BTC_1M).rename({"date": "ts"})
    assert df.height > 10_000
    assert_matches_talib(df)


def test_first_values_use_talib_seeds():
    df = random_walk(200)
    ours = F.compute(df)
    ref = talib_reference(df)
    # the very first outputs (the seeds) already agree: SMA seed for EMA, Wilder seeds, MACD alignment
    for name, first in (("ema_10", 9), ("rsi_14", 14), ("atr_14", 14), ("macd", 33), ("macd_signal", 33)):
        assert ours[name][first] == pytest.approx(ref[name][first], rel=1e-10, abs=1e-10), name
        assert ours[name][first - 1] is None, name


def test_features_are_point_in_time():
    df = random_walk(600, seed=5)
    base = F.compute(df)
    t = 400
    rng = np.random.default_rng(9)
    future = {k: df[k].to_numpy().copy() for k in ("open", "high", "low", "close", "volume")}
    for k in future:
        future[k][t + 1:] *= rng.uniform(0.5, 1.5, len(df) - t - 1)
    perturbed = F.compute(df.with_columns(pl.Series(k, v) for k, v in future.items()))
    cols = [c for c in base.columns if c != "ts"]
    past_a = base[: t + 1].select(cols).to_numpy()
    past_b = perturbed[: t + 1].select(cols).to_numpy()
    np.testing.assert_array_equal(past_a, past_b)
    # the perturbation did reach the later rows, so the comparison above could fail
    assert not np.allclose(base[t + 1:].select(cols).to_numpy()[-50:], perturbed[t + 1:].select(cols).to_numpy()[-50:])


def test_model_features_are_finite_after_warmup_and_scale_free():
    df = random_walk(500)
    a = F.compute(df, keep_raw=False)
    scaled = df.with_columns(pl.col(k) * 1000 for k in ("open", "high", "low", "close"))
    b = F.compute(scaled, keep_raw=False)
    assert a.columns == ["ts", *F.FEATURES]
    x = a[F.WARMUP:].select(F.FEATURES).to_numpy()
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x, b[F.WARMUP:].select(F.FEATURES).to_numpy(), rtol=1e-7, atol=1e-9)


def test_feature_set_id_changes_with_the_features():
    assert F.feature_set_id(F.FEATURES) == F.feature_set_id(list(F.FEATURES))
    assert F.feature_set_id(F.FEATURES) != F.feature_set_id(F.FEATURES[:-1])


def test_single_indicator_expressions_equal_the_staged_frame():
    df = random_walk(400, seed=3)
    full = F.compute(df)
    c, h, lo = pl.col("close"), pl.col("high"), pl.col("low")
    line, sig, hist = F.macd(c)
    lower, mid, upper = F.bollinger(c)
    one = df.select(F.rsi(c).alias("rsi_14"), line.alias("macd"), sig.alias("macd_signal"), hist.alias("macd_hist"),
                    lower.alias("bb_lower"), mid.alias("bb_mid"), upper.alias("bb_upper"),
                    F.atr(h, lo, c).alias("atr_14"))
    for name in one.columns:
        np.testing.assert_allclose(one[name].to_numpy().astype(float), full[name].to_numpy().astype(float),
                                   rtol=1e-12, equal_nan=True, err_msg=name)
