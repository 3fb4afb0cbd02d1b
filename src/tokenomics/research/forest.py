"""A trained price model without scikit-learn: the numpy export of a (StandardScaler +) tree classifier
pipeline (a random forest, extra trees or one decision tree) and its evaluation.

`train` writes model.npz beside model.joblib; `signal --source model`, `run --strategy model` and the
model backtests load it instead of the pickle, so they import neither scikit-learn nor scipy (about a
second of CPU per process) and a prediction costs numpy work instead of one Python call per tree. The
evaluation repeats scikit-learn's arithmetic step for step, so the probabilities are the same floats:
the scaler's (x - mean) / scale in float64, the features cast to float32 as the trees read them, each
node's `x <= threshold`, the leaves' class fractions summed tree after tree, then divided by the count.
A pipeline of any other kind is not exported (None): the pickle and scikit-learn serve it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NUMPY_FILE = "model.npz"
FORMAT = 1
LEAF = -1


def export(pipe: Any) -> dict[str, np.ndarray] | None:
    """The arrays of a fitted [StandardScaler ->] tree-classifier pipeline; None for other models."""
    steps = list(getattr(pipe, "steps", [("model", pipe)]))
    scaler = None
    if len(steps) == 2:
        scaler = steps[0][1]
        if type(scaler).__name__ != "StandardScaler":
            return None
    elif len(steps) != 1:
        return None
    clf = steps[-1][1]
    kind = type(clf).__name__
    if kind in ("RandomForestClassifier", "ExtraTreesClassifier"):
        trees = [e.tree_ for e in clf.estimators_]
    elif kind in ("DecisionTreeClassifier", "ExtraTreeClassifier"):
        trees = [clf.tree_]
    else:
        return None
    if getattr(clf, "n_outputs_", 1) != 1:
        return None
    n_classes = int(np.atleast_1d(clf.n_classes_)[0])
    nodes = max(t.node_count for t in trees)
    shape = (len(trees), nodes)
    feature = np.zeros(shape, np.int32)
    threshold = np.zeros(shape, np.float64)
    left = np.full(shape, LEAF, np.int32)
    right = np.full(shape, LEAF, np.int32)
    missing_left = np.zeros(shape, bool)
    value = np.zeros((*shape, n_classes), np.float64)
    for i, t in enumerate(trees):
        n = t.node_count
        feature[i, :n] = np.maximum(t.feature, 0)
        threshold[i, :n] = t.threshold
        left[i, :n], right[i, :n] = t.children_left, t.children_right
        mgl = getattr(t, "missing_go_to_left", None)
        if mgl is not None:
            missing_left[i, :n] = np.asarray(mgl, bool)
        value[i, :n] = t.value[:, 0, :n_classes]
    d = int(clf.n_features_in_)
    return {
        "format": np.array(FORMAT), "classes": np.asarray(clf.classes_, np.float64),
        "mean": np.asarray(scaler.mean_ if scaler is not None and scaler.with_mean else np.zeros(d), np.float64),
        "scale": np.asarray(scaler.scale_ if scaler is not None and scaler.with_std and scaler.scale_ is not None
                            else np.ones(d), np.float64),
        "scaled": np.array(scaler is not None), "feature": feature, "threshold": threshold, "left": left,
        "right": right, "missing_left": missing_left, "value": value,
        "depth": np.array(max(_depth(t) for t in trees)),
    }


def _depth(tree: Any) -> int:
    return int(tree.max_depth)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(pipe: Any, path: Path, pickle: Path) -> bool:
    """Write the pipeline's numpy export to path (model.npz), naming the pickle it was exported from
    (its sha256); False when the pipeline cannot be exported."""
    arrays = export(pipe)
    if arrays is None:
        return False
    arrays["source_sha256"] = np.array(_sha256(pickle))
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return True


def load(path: Path, pickle: Path) -> "NumpyPipeline | None":
    """The export at path, when there is one and it was exported from this very pickle (a model.joblib
    replaced by hand is not served by a stale export); else None."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if pickle.exists() and str(arrays.get("source_sha256", "")) != _sha256(pickle):
        return None
    return NumpyPipeline(arrays)


class NumpyPipeline:
    """predict_proba and classes_ of the exported pipeline (what ml.positive_proba asks of a pipeline)."""

    def __init__(self, arrays: Any):
        if int(arrays["format"]) != FORMAT:
            raise ValueError(f"model.npz format {int(arrays['format'])}, this version reads {FORMAT}")
        self.classes_ = arrays["classes"]
        self.mean, self.scale, self.scaled = arrays["mean"], arrays["scale"], bool(arrays["scaled"])
        self.feature, self.threshold = arrays["feature"], arrays["threshold"]
        self.left, self.right, self.missing_left = arrays["left"], arrays["right"], arrays["missing_left"]
        self.value, self.depth = arrays["value"], int(arrays["depth"])
        self.n_features_in_ = len(self.mean)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64)  # a copy, as the scaler's
        if self.scaled:
            x -= self.mean
            x /= self.scale
        x = x.astype(np.float32).astype(np.float64)  # what the trees compare: float32 values
        trees, rows = self.feature.shape[0], x.shape[0]
        t = np.arange(trees)[:, None]
        r = np.arange(rows)[None, :]
        node = np.zeros((trees, rows), np.int64)
        for _ in range(self.depth):
            left = self.left[t, node]
            inner = left != LEAF
            if not inner.any():
                break
            v = x[r, self.feature[t, node]]
            go_left = (v <= self.threshold[t, node]) | (np.isnan(v) & self.missing_left[t, node])
            node = np.where(inner, np.where(go_left, left, self.right[t, node]), node)
        leaf = self.value[t, node]  # (trees, rows, classes)
        out = np.zeros((rows, self.value.shape[2]), np.float64)
        for i in range(trees):  # tree after tree, as scikit-learn sums them
            out += leaf[i]
        if trees > 1:
            out /= trees
        return out
