"""Labels, time-series CV splits (no look-ahead, purge, embargo) and trading the predictions."""

from __future__ import annotations

import numpy as np
import pytest

from tokenomics.core import ml


def test_forward_returns_and_labels_look_exactly_horizon_ahead():
    close = np.array([100.0, 101.0, 99.0, 102.0, 103.0])
    fwd = ml.forward_returns(close, 2)
    assert fwd[0] == pytest.approx(99 / 100 - 1) and fwd[2] == pytest.approx(103 / 99 - 1)
    assert np.isnan(fwd[3:]).all()
    y = ml.labels(fwd, 0.5)
    assert y[0] == 0 and y[1] == 1 and y[2] == 1 and np.isnan(y[3:]).all()


def test_walk_forward_trains_only_on_the_past_and_purges_the_label_window():
    splits = ml.walk_forward_splits(600, 5, horizon=7)
    assert len(splits) == 5
    tests = np.concatenate([te for _, te in splits])
    assert len(tests) == len(set(tests.tolist()))  # test blocks never overlap
    for train, test in splits:
        assert train.max() + 7 < test.min()  # a training label (t .. t+7) never reaches the test block
        assert np.all(np.diff(test) == 1)  # contiguous block: no shuffling


def test_purged_kfold_drops_label_overlap_and_embargo():
    n, h, e = 500, 5, 10
    for train, test in ml.purged_kfold_splits(n, 5, horizon=h, embargo=e):
        a, b = test.min(), test.max() + 1
        assert not np.isin(train, test).any()
        before, after = train[train < a], train[train >= b]
        assert len(before) == 0 or before.max() + h < a
        assert len(after) == 0 or after.min() >= b + e
    covered = np.concatenate([te for _, te in ml.purged_kfold_splits(n, 5, h, e)])
    assert sorted(covered.tolist()) == list(range(n))


def test_trading_the_predictions_holds_horizon_bars_and_pays_costs_both_ways():
    fwd = np.array([0.10, 0.50, 0.50, -0.20, 0.0, 0.0])
    enter = np.array([True, True, False, True, False, False])
    ret, trades = ml.trade_predictions(enter, fwd, horizon=2, cost_rate=0.01)
    # entry at 0 (held 2 bars, so bar 1's entry is ignored), then at 3
    assert trades == 2
    assert ret == pytest.approx(0.99 * 1.10 * 0.99 * 0.99 * 0.80 * 0.99 - 1)
    assert ml.trade_predictions(np.zeros(6, bool), fwd, 2, 0.01) == (0.0, 0)


def test_model_entry_rules():
    base = dict(min_probability=0.55, held=False, pending=False, open_slots=3, tradable=True, stale=False)
    assert ml.decide_model_entry(probability=0.7, **base).status == "new"
    assert "below" in ml.decide_model_entry(probability=0.5, **base).reason
    assert ml.decide_model_entry(probability=0.7, **{**base, "held": True}).status == "skipped"
    assert "older" in ml.decide_model_entry(probability=0.7, **{**base, "stale": True}).reason
    assert ml.decide_model_entry(probability=0.7, **{**base, "open_slots": 0}).reason.startswith("capacity")


def _pooled_equity_and_crypto(h: int):
    """Hourly crypto around the clock and an equity with 7 bars a weekday session, pooled by time."""
    hour = np.timedelta64(1, "h")
    t0 = np.datetime64("2025-01-06T00:00")
    crypto = t0 + np.arange(24 * 60) * hour
    days = [t0 + np.timedelta64(d, "D") for d in range(60) if d % 7 < 5]
    equity = np.array([d + np.timedelta64(14, "h") + k * hour for d in days for k in range(7)])
    ts, label_end, group = [], [], []
    for g, series in enumerate((crypto, equity)):
        ts.append(series[:-h])
        label_end.append(series[h:])
        group.append(np.full(len(series) - h, g))
    ts, label_end, group = map(np.concatenate, (ts, label_end, group))
    order = np.argsort(ts, kind="stable")
    return ts[order], label_end[order], group[order]


@pytest.mark.parametrize("scheme", ["walk-forward", "purged"])
def test_time_splits_purge_each_symbols_label_window_in_time(scheme):
    h, e = 5, 10
    ts, label_end, group = _pooled_equity_and_crypto(h)
    splits = ml.time_splits(ts, label_end, group, scheme, 5, e)
    assert len(splits) == 5
    for train, test in splits:
        t_a, t_b = ts[test].min(), ts[test].max()
        assert not set(train) & set(test)
        leaking = (ts[train] <= t_b) & (label_end[train] >= t_a)
        assert not leaking.any()  # no training label reaches into the test block, nights included
        if scheme == "walk-forward":
            assert ts[train].max() < t_a
        else:  # each symbol's first `e` rows after the block are embargoed
            for g in (0, 1):
                after = np.sort(ts[(group == g) & (ts > t_b)])
                kept = set(ts[train][group[train] == g])
                assert not kept & set(after[:e]) and (len(after) <= e or after[e] in kept)
    # the positional purge of the pooled axis let equity labels leak over nights and weekends
    times = np.unique(ts)
    rank = np.searchsorted(times, ts)
    leaks = 0
    for tr, te in ml.walk_forward_splits(len(times), 5, h):
        train = np.isin(rank, tr)
        leaks += int(((label_end[train] >= times[te[0]])).sum())
    assert leaks > 0


def test_buy_and_hold_enters_once_and_pays_costs_once_each_way():
    assert ml.buy_and_hold(np.array([100.0, 50.0, 110.0]), 0.01) == pytest.approx(0.99 * 1.1 * 0.99 - 1)
    assert ml.buy_and_hold(np.array([100.0]), 0.01) == 0.0
