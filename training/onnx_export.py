"""LightGBM boosters → ONNX, and the onnxruntime sessions the predictor serves through.

onnxmltools converts regression (quantile) and multiclass boosters; the regression graph outputs
one column, the multiclass graph (``zipmap=False``) a probability matrix. Sessions run with one
intra-op thread: a request predicts a handful of rows, where threads only add latency.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

if TYPE_CHECKING:  # serving imports this module: the lightgbm package would bring sklearn, pandas…
    import lightgbm as lgb

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


class OnnxEnsemble:
    """Several converted boosters merged into one graph over one input: one ``run`` per request.

    Each part keeps its own nodes (prefixed ``<name>/``); merging removes the per-session call
    overhead that otherwise dominates a few-row prediction.
    """

    def __init__(self, parts: dict[str, tuple[bytes, bool]]) -> None:
        import onnx
        from onnx import compose, helper

        nodes: list[onnx.NodeProto] = []
        outputs: list[onnx.ValueInfoProto] = []
        initializers: list[onnx.TensorProto] = []
        opsets: dict[str, int] = {}
        ir_version = 0
        graph_input: onnx.ValueInfoProto | None = None
        self._outputs: dict[str, str] = {}
        self._multiclass: dict[str, bool] = {}
        for name, (data, multiclass) in parts.items():
            model = onnx.load_from_string(data)
            if graph_input is None:
                graph_input = model.graph.input[0]
            model = compose.add_prefix(model, prefix=f"{name}/")
            inp = model.graph.input[0].name
            for node in model.graph.node:
                renamed = [INPUT_NAME if x == inp else x for x in node.input]
                del node.input[:]
                node.input.extend(renamed)
                nodes.append(node)
            out = model.graph.output[-1] if multiclass else model.graph.output[0]
            outputs.append(out)
            initializers.extend(model.graph.initializer)
            self._outputs[name] = out.name
            self._multiclass[name] = multiclass
            for op in model.opset_import:
                opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
            ir_version = max(ir_version, model.ir_version)
        if graph_input is None:
            raise OnnxExportError("no model to merge")
        graph = helper.make_graph(nodes, "liangxing", [graph_input], outputs, initializers)
        merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
        merged.ir_version = ir_version
        self.session = session(merged.SerializeToString())
        self.n_features = graph_input.type.tensor_type.shape.dim[-1].dim_value
        self._names = list(self._outputs)
        self._output_names = [self._outputs[n] for n in self._names]

    @property
    def names(self) -> list[str]:
        """The parts, in the order :meth:`run` returns their outputs."""
        return self._names

    def run(self, X32: np.ndarray) -> list[np.ndarray]:
        """Raw outputs of every part, in :attr:`names` order, for C-contiguous float32 rows.

        The serving call: no per-part reshaping. (n, 1) for regression, (n, k) for k targets or classes. (The
        session's private C++ binding would save the public wrapper's few µs of input checks; a
        private attribute is not worth them.)
        """
        return self.session.run(self._output_names, {INPUT_NAME: X32})

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Every part's output for float32 rows: (n,) for a one-target regression, (n, k) for k targets
        (the explanation credits) and for a multiclass part's probabilities."""
        values = self.session.run(self._output_names, {INPUT_NAME: np.asarray(X, dtype=np.float32)})
        return {
            name: (v.reshape(-1) if not self._multiclass[name] and v.shape[-1] == 1 else v)
            for name, v in zip(self._names, values, strict=True)
        }
