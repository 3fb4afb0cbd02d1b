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
