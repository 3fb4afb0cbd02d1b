"""scripts/average_transformer_runs.py: the weights of runs that share their start are averaged into one
ONNX model (what runs is the mean model), and runs that are not the same network are refused."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from average_transformer_runs import average  # noqa: E402


def linear(path: Path, w: np.ndarray, b: np.ndarray, op: str = "Add") -> Path:
    """x (n, 4) -> x @ w + b: a stand-in for an exported classifier (float weights and an int shape)."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node(op, ["xw", "b"], ["y"]),
         helper.make_node("Reshape", ["y", "shape"], ["logits"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(w.astype(np.float32), "w"), numpy_helper.from_array(b.astype(np.float32), "b"),
         numpy_helper.from_array(np.array([-1, 3], dtype=np.int64), "shape")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["logits"], {"x": x})[0]


def test_the_soup_runs_the_mean_of_the_runs_weights(tmp_path) -> None:
    rng = np.random.default_rng(0)
    ws, bs = rng.normal(size=(3, 4, 3)), rng.normal(size=(3, 3))
    runs = [linear(tmp_path / f"run{i}.onnx", ws[i], bs[i]) for i in range(3)]
    average(runs, tmp_path / "soup.onnx")
    x = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(run(tmp_path / "soup.onnx", x), x @ ws.mean(0) + bs.mean(0), rtol=1e-5, atol=1e-5)
    # not the mean of the outputs' argmax or of one run: each run alone gives something else
    assert all(not np.allclose(run(r, x), run(tmp_path / "soup.onnx", x), atol=1e-3) for r in runs)


def test_runs_of_different_networks_are_refused(tmp_path) -> None:
    rng = np.random.default_rng(1)
    a = linear(tmp_path / "a.onnx", rng.normal(size=(4, 3)), rng.normal(size=3))
    other_op = linear(tmp_path / "b.onnx", rng.normal(size=(4, 3)), rng.normal(size=3), op="Sub")
    with pytest.raises(SystemExit, match="not the same graph"):
        average([a, other_op], tmp_path / "soup.onnx")
    graph = onnx.load(str(a))
    graph.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.ones((4, 4), np.float32), "w"))
    onnx.save(graph, str(tmp_path / "c.onnx"))
    with pytest.raises(SystemExit, match="initializers differ"):
        average([a, tmp_path / "c.onnx"], tmp_path / "soup.onnx")
