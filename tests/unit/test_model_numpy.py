"""A trained price model runs without scikit-learn: its numpy export (model.npz: the scaler and every
tree's nodes) gives exactly scikit-learn's probabilities, and loading it imports no sklearn/scipy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tokenomics.research import forest, ml


def _rows(rng, n, d):
    x = rng.standard_normal((n, d)) * rng.uniform(0.01, 100, d)
    return x


@pytest.mark.parametrize("classifier", ["sklearn.ensemble.RandomForestClassifier",
                                        "sklearn.ensemble.ExtraTreesClassifier",
                                        "sklearn.tree.DecisionTreeClassifier"])
def test_the_numpy_export_gives_sklearns_probabilities_exactly(classifier):
    rng = np.random.default_rng(0)
    x = _rows(rng, 3000, 7)
    y = (x[:, 0] / x[:, 0].std() + x[:, 3] / x[:, 3].std() + rng.standard_normal(3000) > 0).astype(float)
    params = {"random_state": 0, "max_depth": 8} | ({"n_estimators": 40} if ".ensemble." in classifier else {})
    pipe = ml.make_pipeline(classifier, params).fit(x, y)
    arrays = forest.export(pipe)
    assert arrays is not None
    model = forest.NumpyPipeline(arrays)
    test = _rows(np.random.default_rng(1), 5000, 7)
    # rows whose values sit exactly on split thresholds (after scaling): the <= side, as in float32
    scaler = pipe.steps[0][1]
    edge = test[:200].copy()
    t0 = (pipe.steps[1][1].estimators_[0] if hasattr(pipe.steps[1][1], "estimators_") else pipe.steps[1][1]).tree_
    f, thr = t0.feature[0], t0.threshold[0]
    edge[:, f] = thr * scaler.scale_[f] + scaler.mean_[f]
    test = np.vstack([test, edge])
    assert list(model.classes_) == list(pipe.classes_)
    assert np.array_equal(model.predict_proba(test), pipe.predict_proba(test))
    assert np.array_equal(ml.positive_proba(model, test[:50]), ml.positive_proba(pipe, test[:50]))


def test_a_pipeline_it_cannot_export_is_left_to_sklearn():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    pipe = ml.make_pipeline("sklearn.linear_model.LogisticRegression", {}).fit(x, (x[:, 0] > 0).astype(float))
    assert forest.export(pipe) is None


def test_the_shipped_example_model_loads_without_sklearn_and_agrees(tmp_path):
    path = REPO / "trained_models" / "sim-example"
    saved = tmp_path / "proba.npy"
    assert (path / forest.NUMPY_FILE).exists()
    code = ("import sys, numpy as np; from pathlib import Path; from tokenomics.research import ml; "
            f"m = ml.Model(Path({str(path)!r})); x = np.random.default_rng(2).standard_normal((500, len(m.features))); "
            "np.save(sys.argv[1], ml.positive_proba(m.pipe, x)); "
            "print(sorted({k.split('.')[0] for k in sys.modules} & {'sklearn', 'scipy', 'joblib'}))")
    out = subprocess.run([sys.executable, "-c", code, str(saved)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    import joblib

    pipe = joblib.load(path / ml.PIPELINE)
    pipe.steps[-1][1].n_jobs = 1  # as the pickle is loaded to predict: trees summed in order, not by threads
    x = np.random.default_rng(2).standard_normal((500, pipe.n_features_in_))
    assert np.array_equal(np.load(saved), ml.positive_proba(pipe, x))


def test_train_saves_the_export_and_a_pickle_replaced_by_hand_is_not_served_by_a_stale_one(tmp_path):
    import joblib

    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 15))
    y = (x[:, 0] > 0).astype(float)
    make = lambda seed: ml.make_pipeline("sklearn.ensemble.RandomForestClassifier",  # noqa: E731
                                         {"n_estimators": 5, "random_state": seed, "n_jobs": 1}).fit(x, y)
    card = {"name": "m", "kind": "classifier", "features": [f"f{i}" for i in range(15)]}
    path = ml.save_model(tmp_path, "m", make(0), card, force=False)
    assert (path / forest.NUMPY_FILE).exists()
    assert isinstance(ml.Model(path).pipe, forest.NumpyPipeline)
    joblib.dump(make(1), path / ml.PIPELINE)
    other = ml.Model(path).pipe
    assert not isinstance(other, forest.NumpyPipeline)
    assert np.array_equal(other.predict_proba(x), make(1).predict_proba(x))
