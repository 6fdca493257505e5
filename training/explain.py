"""Per-feature contributions of a LightGBM regressor by decision paths (Saabas / "treeinterpreter").

Each split on a row's path moves the prediction from the node's value to the child's value; that
move is credited to the split feature. The credits plus the root values add up exactly to the
booster's raw prediction, like ``pred_contrib`` (TreeSHAP), which instead averages over feature
orderings and costs O(leaves · depth²) per tree: about 7× a prediction (benchmarks/bench_predict.py).
Here all trees are walked together, level by level, in numpy.

Serving does not walk paths: a row's contributions depend only on the leaf it reaches in each
tree, so :mod:`training.predictor` sums per-leaf tables built once from the same credits. This
walk is the reference those tables are tested against (tests/test_predict_fast.py).
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

_ZERO = 1e-35  # LightGBM's kZeroThreshold


class PathExplainer:
    """Flattened trees of one booster; ``contributions(X)`` → (n, n_features + 1), last column the bias."""

    def __init__(self, booster: lgb.Booster) -> None:
        model = booster.dump_model()
        self.n_features = int(model["max_feature_idx"]) + 1
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        leaf: list[bool] = []
        default_left: list[bool] = []
        missing: list[int] = []  # 0 none (NaN → 0.0), 1 zero (0 and NaN → default), 2 nan (NaN → default)
        roots: list[int] = []
        depth = 0

        def add(node: dict[str, Any], level: int) -> int:
            nonlocal depth
            i = len(value)
            for column in (feature, threshold, left, right, value, leaf, default_left, missing):
                column.append(0)  # type: ignore[arg-type]
            if "leaf_value" in node:
                feature[i], value[i], leaf[i] = 0, float(node["leaf_value"]), True
                left[i] = right[i] = i
                threshold[i] = 0.0
                depth = max(depth, level)
                return i
            if node.get("decision_type", "<=") != "<=":
                raise ValueError("PathExplainer handles numerical splits only (no categorical features)")
            feature[i] = int(node["split_feature"])
            threshold[i] = float(node["threshold"])
            value[i] = float(node["internal_value"])
            leaf[i] = False
            default_left[i] = bool(node["default_left"])
            missing[i] = {"None": 0, "Zero": 1, "NaN": 2}[node["missing_type"]]
            left[i] = add(node["left_child"], level + 1)
            right[i] = add(node["right_child"], level + 1)
            return i

        for tree in model["tree_info"]:
            roots.append(add(tree["tree_structure"], 0))
        self.feature = np.array(feature, dtype=np.int64)
        self.threshold = np.array(threshold, dtype=np.float64)
        self.left = np.array(left, dtype=np.int64)
        self.right = np.array(right, dtype=np.int64)
        self.value = np.array(value, dtype=np.float64)
        self.leaf = np.array(leaf, dtype=bool)
        self.default_left = np.array(default_left, dtype=bool)
        self.missing = np.array(missing, dtype=np.int8)
        self.roots = np.array(roots, dtype=np.int64)
        self.depth = depth
        self.bias = float(self.value[self.roots].sum())

    def contributions(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        n = len(X)
        width = self.n_features + 1
        rows = np.repeat(np.arange(n), len(self.roots))
        cur = np.tile(self.roots, n)
        flat = X.reshape(-1)
        base = rows * X.shape[1]
        keys: list[np.ndarray] = []
        deltas: list[np.ndarray] = []
        for _ in range(self.depth):
            f = self.feature[cur]
            x = flat[base + f]
            miss = self.missing[cur]
            nan = np.isnan(x)
            x = np.where(nan & (miss == 0), 0.0, x)
            is_missing = (nan & (miss == 2)) | ((miss == 1) & (nan | (np.abs(x) <= _ZERO)))
            go_left = np.where(is_missing, self.default_left[cur], x <= self.threshold[cur])
            nxt = np.where(go_left, self.left[cur], self.right[cur])  # a leaf points to itself
            keys.append(rows * width + f)
            deltas.append(self.value[nxt] - self.value[cur])
            cur = nxt
        out = np.bincount(np.concatenate(keys), weights=np.concatenate(deltas), minlength=n * width)
        out = out.reshape(n, width)
        out[:, -1] = self.bias
        return out
