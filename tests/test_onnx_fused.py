"""The served ONNX graph: every converted booster fused into one tree ensemble.

Each part's columns must be what its own graph gives: bit for bit for a regressor, its SOFTMAX
probabilities (to float32 rounding) for a classifier; parts with the same trees share them; and
a graph that does more than its tree ensemble is refused rather than fused without that work.
Real LightGBM boosters on random data, converted by onnxmltools, run by onnxruntime.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from training.onnx_export import INPUT_NAME, OnnxEnsemble, OnnxExportError, booster_to_onnx, session, softmax_rows

N_FEATURES = 12


def _data(seed: int, n: int = 400) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take each split's default direction
    return X, rng


def _regressor(seed: int) -> bytes:
    X, rng = _data(seed)
    y = np.nan_to_num(X[:, 0]) * 2 + rng.normal(size=len(X))
    booster = lgb.train({"objective": "quantile", "alpha": 0.3, "num_leaves": 7, "verbose": -1, "seed": seed},
                        lgb.Dataset(X, y), num_boost_round=25)
    return booster_to_onnx(booster, N_FEATURES, f"reg{seed}")


def _classifier(seed: int, n_classes: int) -> bytes:
    X, rng = _data(seed)
    y = (np.nan_to_num(X[:, 1]) + rng.normal(size=len(X)) > 0).astype(int)
    if n_classes == 3:
        y = y + (np.nan_to_num(X[:, 2]) > 1)
    booster = lgb.train({"objective": "multiclass", "num_class": n_classes, "num_leaves": 5, "verbose": -1,
                         "seed": seed}, lgb.Dataset(X, y), num_boost_round=15)
    return booster_to_onnx(booster, N_FEATURES, f"clf{seed}")


def _own_output(part: bytes, X32: np.ndarray) -> np.ndarray:
    model = onnx.load_from_string(part)
    return session(part).run([model.graph.output[-1].name], {INPUT_NAME: X32})[0]


def test_each_part_reads_what_its_own_graph_gives() -> None:
    parts = {"low": _regressor(1), "point": _regressor(2), "three": _classifier(3, 3), "two": _classifier(4, 2)}
    fused = OnnxEnsemble(parts)
    X32 = _data(9, 200)[0].astype(np.float32)
    raw = fused.run(X32)
    assert raw.shape == (200, 1 + 1 + 3 + 2) and fused.width == 7
    assert fused.classifiers == {"three", "two"}
    out = fused.predict(X32)
    for name, part in parts.items():
        own = _own_output(part, X32)
        if name in fused.classifiers:
            assert out[name].shape == own.shape
            np.testing.assert_allclose(out[name], own, rtol=0, atol=2e-7, err_msg=name)
            np.testing.assert_allclose(out[name].sum(axis=1), 1.0, rtol=0, atol=1e-12)
        else:  # same trees summed in the same order: the same float32 sums
            np.testing.assert_array_equal(raw[:, fused.layout[name]], own, err_msg=name)
            np.testing.assert_array_equal(out[name], own.reshape(-1))


def test_parts_with_the_same_trees_share_them() -> None:
    point = _regressor(2)
    model = onnx.load_from_string(point)
    # the same trees with other leaf values (as LeafContributions writes the point model's credits)
    (ensemble,) = [n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor"]
    for a in ensemble.attribute:
        if a.name == "target_weights":
            a.floats[:] = [2 * w for w in a.floats]
    doubled = model.SerializeToString()
    X32 = _data(9, 100)[0].astype(np.float32)
    shared = OnnxEnsemble({"point": point, "doubled": doubled})
    apart = OnnxEnsemble({"point": point, "other": _regressor(5)})
    assert shared.n_trees == 25 and apart.n_trees == 50
    raw = shared.run(X32)
    np.testing.assert_array_equal(raw[:, shared.layout["doubled"]], _own_output(doubled, X32))
    np.testing.assert_array_equal(raw[:, shared.layout["point"]], _own_output(point, X32))


def test_softmax_rows_is_the_one_softmax() -> None:
    rows = [[0.0, 1.0, -2.0], [1000.0, 999.0, 998.0], [-3.5, -3.5, -3.5]]
    out = softmax_rows(rows)
    for row, p in zip(rows, out, strict=True):
        e = np.exp(np.array(row) - max(row))
        np.testing.assert_allclose(p, e / e.sum(), rtol=1e-15)
    assert out[2] == [1 / 3, 1 / 3, 1 / 3]


def _with_extra_node(part: bytes) -> bytes:
    model = onnx.load_from_string(part)
    last = model.graph.output[0]
    shift = numpy_helper.from_array(np.array([0.5], dtype=np.float32), "shift")
    model.graph.initializer.append(shift)
    model.graph.node.append(helper.make_node("Add", [last.name, "shift"], ["shifted"]))
    out = helper.make_tensor_value_info("shifted", onnx.TensorProto.FLOAT, None)
    del model.graph.output[:]
    model.graph.output.append(out)
    return model.SerializeToString()


def _with_attribute(part: bytes, name: str, value: bytes) -> bytes:
    model = onnx.load_from_string(part)
    (ensemble,) = [n for n in model.graph.node if n.op_type.startswith("TreeEnsemble")]
    kept = [a for a in ensemble.attribute if a.name != name]
    del ensemble.attribute[:]
    ensemble.attribute.extend([*kept, helper.make_attribute(name, value)])
    return model.SerializeToString()


@pytest.mark.parametrize(("broken", "message"), [
    (lambda: _with_extra_node(_regressor(1)), "a Add node after its tree ensemble"),
    (lambda: _with_attribute(_classifier(3, 3), "post_transform", b"LOGISTIC"), "post_transform LOGISTIC"),
    (lambda: _with_attribute(_regressor(1), "aggregate_function", b"AVERAGE"), "aggregate_function AVERAGE"),
])
def test_a_graph_doing_more_than_its_trees_is_refused(broken: object, message: str) -> None:
    with pytest.raises(OnnxExportError, match=message):
        OnnxEnsemble({"ok": _regressor(2), "broken": broken()})  # type: ignore[operator]
