"""Machine-learning policy, pure: labels, time-series cross-validation, trading the predictions.

No shuffled CV on time series: folds are contiguous blocks of time. Labels look `horizon` bars
ahead, so training rows whose label window reaches into a test block are purged, and (purged
k-fold) an embargo of bars after each test block is dropped too.
"""

from __future__ import annotations

import numpy as np

from tokenomics.core.signals import SignalDecision, book_check


def forward_returns(close: np.ndarray, horizon: int) -> np.ndarray:
    """close[t + horizon] / close[t] - 1; NaN for the last `horizon` bars (not yet known)."""
    out = np.full(len(close), np.nan)
    if len(close) > horizon:
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out


def labels(fwd: np.ndarray, threshold_pct: float) -> np.ndarray:
    """1 where the forward return beats threshold_pct %, 0 otherwise, NaN where unknown."""
    y = (fwd > threshold_pct / 100.0).astype(float)
    y[np.isnan(fwd)] = np.nan
    return y


def _blocks(n: int, k: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, k + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges, edges[1:])]


def walk_forward_splits(n: int, folds: int, horizon: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding window: time is cut in folds + 1 blocks; fold i trains on blocks 0..i (minus the last
    `horizon` times, whose labels reach into the test) and tests on block i + 1."""
    blocks = _blocks(n, folds + 1)
    out = []
    for i in range(folds):
        test_a, test_b = blocks[i + 1]
        train = np.arange(0, max(test_a - horizon, 0))
        if len(train) and test_b > test_a:
            out.append((train, np.arange(test_a, test_b)))
    return out


def purged_kfold_splits(n: int, folds: int, horizon: int, embargo: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k contiguous test blocks; train on every other time except those whose label window overlaps
    the test block (purge) and the `embargo` times right after it."""
    out = []
    idx = np.arange(n)
    for a, b in _blocks(n, folds):
        keep = (idx < a - horizon) | (idx >= b + embargo)
        train = idx[keep]
        if len(train) and b > a:
            out.append((train, np.arange(a, b)))
    return out


def trade_predictions(enter: np.ndarray, fwd: np.ndarray, horizon: int, cost_rate: float) -> tuple[float, int]:
    """Compounded return of going long for `horizon` bars at each predicted entry (one position at a
    time), paying cost_rate on entry and on exit. Returns (total return, number of trades)."""
    total, trades, i = 1.0, 0, 0
    n = len(enter)
    while i < n:
        if enter[i] and not np.isnan(fwd[i]):
            total *= (1.0 - cost_rate) * (1.0 + fwd[i]) * (1.0 - cost_rate)
            trades += 1
            i += horizon
        else:
            i += 1
    return total - 1.0, trades


def decide_model_entry(*, probability: float, min_probability: float, held: bool, pending: bool,
                       open_slots: int, tradable: bool, stale: bool) -> SignalDecision:
    """The model's view of one symbol's latest bar: a long entry, or why not. First rule wins."""
    if probability < min_probability:
        return SignalDecision("skipped", f"probability {probability:.3f} below min_probability {min_probability}")
    if stale:
        return SignalDecision("skipped", "latest bar older than ml.max_bar_age_bars")
    return book_check(held=held, pending=pending, open_slots=open_slots, tradable=tradable) or \
        SignalDecision("new", f"probability {probability:.3f} >= {min_probability}")


def time_splits(ts: np.ndarray, label_end: np.ndarray, group: np.ndarray, scheme: str, folds: int,
                embargo: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row splits of a pooled multi-symbol dataset, purged per symbol in time.

    Test blocks are contiguous blocks of the pooled time axis (walk-forward: folds + 1 blocks, each
    after the first tested on everything before it; purged: k blocks, trained on both sides). A
    training row is purged when its own label window [ts, label_end] (its symbol's bar `horizon`
    bars later: over a night or a weekend for an equity) reaches the test block's time span; in
    purged k-fold, each symbol's first `embargo` rows after the block are dropped too. Counting in
    positions of the pooled axis instead let equity labels reach into the test block."""
    ts, label_end, group = np.asarray(ts), np.asarray(label_end), np.asarray(group)
    times = np.unique(ts)
    rank = np.searchsorted(times, ts)
    walk = scheme == "walk-forward"
    blocks = _blocks(len(times), folds + 1 if walk else folds)
    out = []
    for a, b in blocks[1:] if walk else blocks:
        if b <= a:
            continue
        t_a, t_b = times[a], times[b - 1]
        test = (rank >= a) & (rank < b)
        train = (rank < a) if walk else ~test
        train &= ~((ts <= t_b) & (label_end >= t_a))  # a label window that reaches the block
        if not walk and embargo:
            for g in np.unique(group):
                mine = np.flatnonzero((group == g) & (ts > t_b))
                if len(mine):
                    train[mine[np.argsort(ts[mine], kind="stable")][:embargo]] = False
        if train.any():
            out.append((np.flatnonzero(train), np.flatnonzero(test)))
    return out


def buy_and_hold(close: np.ndarray, cost_rate: float) -> float:
    """Enter once at the first close, exit at the last, paying cost_rate each way."""
    if len(close) < 2:
        return 0.0
    return (1.0 - cost_rate) * float(close[-1] / close[0]) * (1.0 - cost_rate) - 1.0
