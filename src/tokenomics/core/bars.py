"""Bar bookkeeping: timeframes and gaps. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta

_TF = re.compile(r"^(\d+)([mhdw])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def timeframe_seconds(tf: str) -> int:
    """'1m' -> 60, '4h' -> 14400, '1d' -> 86400 (ccxt's spelling)."""
    m = _TF.match(tf.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"timeframe must look like 1m, 15m, 1h, 1d or 1w (got {tf!r})")
    return int(m.group(1)) * _UNIT[m.group(2)]


def canonical_timeframe(tf: str) -> str:
    """One spelling per bar length, the largest whole unit: '60m' -> '1h', '1440m' -> '1d', '24h' -> '1d',
    '90m' stays. Bars are stored and looked up under it, so 1h and 60m are the same timeframe everywhere
    (and the spelling is the one ccxt and Alpaca take). ValueError as timeframe_seconds."""
    seconds = timeframe_seconds(tf)
    for unit in "wdhm":
        if seconds % _UNIT[unit] == 0:
            return f"{seconds // _UNIT[unit]}{unit}"
    raise AssertionError(tf)  # every timeframe is whole minutes


def minutes_timeframe(minutes: int) -> str:
    """The timeframe of a bar of `minutes` (the sim step): 60 -> '1h'."""
    return canonical_timeframe(f"{minutes}m")


def find_gaps(times: list[datetime], tf_seconds: int,
              expected: Callable[[datetime, datetime], bool] | None = None) -> list[dict]:
    """Holes in a sorted series of bar open times: each with the bars around it and how many are missing.

    `expected(t0, t1)` says whether a bar [t0, t1) should exist (its market trades then: an equity's
    sessions); without it every period should have a bar (crypto, 24/7). A hole that only spans
    closed periods (nights, weekends, holidays) is no gap."""
    step = timedelta(seconds=tf_seconds)
    gaps = []
    for a, b in zip(times, times[1:]):
        if b - a > step:
            holes = int((b - a) / step) - 1
            if expected is not None:
                holes = sum(1 for k in range(1, holes + 1) if expected(a + k * step, a + (k + 1) * step))
            if holes:
                gaps.append({"after": a.isoformat(), "before": b.isoformat(), "missing": holes})
    return gaps


def _num(x: float) -> str:
    return f"{x:g}"


def bar_problem(open_: float | None, high: float | None, low: float | None, close: float | None,
                volume: float | None = None) -> str | None:
    """Why a bar is impossible (the first rule it breaks), or None for a valid bar: every price present,
    finite and > 0, high >= low, open and close within low-high, volume (when given) finite and >= 0."""
    prices = {"open": open_, "high": high, "low": low, "close": close}
    for name, v in prices.items():
        if v is None or math.isnan(v):
            return f"{name} is missing"
    for name, v in prices.items():
        if math.isinf(v):
            return f"{name} {_num(v)} is not finite"
        if v <= 0:
            return f"{name} {_num(v)} <= 0"
    if high < low:
        return f"high {_num(high)} is below low {_num(low)}"
    for name in ("open", "close"):
        v = prices[name]
        if not low <= v <= high:
            return f"{name} {_num(v)} is outside low-high ({_num(low)}-{_num(high)})"
    if volume is not None and not math.isnan(volume) and (math.isinf(volume) or volume < 0):
        return f"volume {_num(volume)} is not a finite number >= 0"
    return None
