"""LightGBM boosters → ONNX, and the onnxruntime sessions the predictor serves through.

onnxmltools converts regression (quantile) and multiclass boosters; the regression graph outputs
one column, the multiclass graph (``zipmap=False``) a probability matrix. Sessions run with one
intra-op thread: a request predicts a handful of rows, where threads only add latency.
"""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import onnxruntime as ort

INPUT_NAME = "features"


class OnnxExportError(RuntimeError):
    pass


def booster_to_onnx(booster: lgb.Booster, n_features: int, name: str) -> bytes:
    """Serialised ONNX model of one booster (input ``features``: float32 [n, n_features])."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    if booster.num_feature() != n_features:
        raise OnnxExportError(f"{name}: booster has {booster.num_feature()} features, spec has {n_features}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_lightgbm(
            booster, name=name, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            zipmap=False, target_opset=15,
        )
    return model.SerializeToString()


def session(onnx_bytes: bytes) -> ort.InferenceSession:
    """An onnxruntime session for serving: CPU, one intra-op and one inter-op thread."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxBooster:
    """One converted booster: ``predict(X)`` returns what ``Booster.predict`` would (float32 math)."""

    def __init__(self, onnx_bytes: bytes, *, multiclass: bool) -> None:
        self.session = session(onnx_bytes)
        self.multiclass = multiclass
        outputs = [o.name for o in self.session.get_outputs()]
        # Regression: one output; multiclass: (label, probabilities).
        self._output = [outputs[-1]] if multiclass else [outputs[0]]

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.session.run(self._output, {INPUT_NAME: np.asarray(X, dtype=np.float32)})[0]
        return out if self.multiclass else out.reshape(-1)
