"""Weighted reciprocal-rank fusion of the dense and sparse rankings (hybrid search).

Plain RRF (Cormack et al. 2009) gives each ranking the same say: a row's score is
Σ 1/(RRF_K + rank). When one ranking is measurably better than the other on held-out queries, a
weight per ranking (``w / (RRF_K + rank)``) lets the better one lead while the other still breaks
its ties and lifts rows it ranks high. The weight is configuration (Settings.retrieval_dense_weight),
chosen on held-out real judgments by benchmarks/eval_retrieval.py, never per query.
"""

from __future__ import annotations

import numpy as np

RRF_K = 60
"""Reciprocal-rank-fusion constant: a hit's weight is w/(60 + rank)."""


def fuse(
    dense: np.ndarray, sparse: np.ndarray, *, dense_weight: float = 1.0, sparse_weight: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Rows best first (ties by row number) and their fused scores ``Σ w/(RRF_K + rank)``.

    ``dense`` and ``sparse`` are row ids best first. With both weights 1 this is plain RRF, the
    same order and scores as adding 1/(RRF_K + rank) per ranking. A ranking with weight 0 only
    fills in: its rows that the other ranking lacks follow all of that ranking's rows, in their own
    order, with score 0 (so a search still returns rows when the other side finds too few). A
    ranking alone (the other is empty, e.g. an index without a sparse side) is the result as it is,
    the same array, scored ``w/(RRF_K + rank)``, with w = 1 when its weight is 0: a ranking that
    only fills in, with nothing to fill, is the whole result.
    """
    for name, w in (("dense_weight", dense_weight), ("sparse_weight", sparse_weight)):
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"{name} must be a finite number ≥ 0, not {w}")
    if dense_weight == 0 and sparse_weight == 0:
        raise ValueError("dense_weight and sparse_weight are both 0: nothing to rank by")
    dense, sparse = np.asarray(dense, np.int64), np.asarray(sparse, np.int64)
    if len(dense) == 0 or len(sparse) == 0:
        single, weight = (dense, dense_weight) if len(sparse) == 0 else (sparse, sparse_weight)
        return single, (weight or 1.0) / (RRF_K + np.arange(1, len(single) + 1))
    if dense_weight == 0 or sparse_weight == 0:
        lead, lead_weight, rest = (sparse, sparse_weight, dense) if dense_weight == 0 else (dense, dense_weight, sparse)
        scores = lead_weight / (RRF_K + np.arange(1, len(lead) + 1))
        fill = rest[~np.isin(rest, lead)]
        return np.concatenate([lead, fill]), np.concatenate([scores, np.zeros(len(fill))])
    rows = np.concatenate([dense, sparse])
    weights = np.concatenate([
        dense_weight / (RRF_K + np.arange(1, len(dense) + 1)),
        sparse_weight / (RRF_K + np.arange(1, len(sparse) + 1)),
    ])
    unique, slot = np.unique(rows, return_inverse=True)
    fused = np.zeros(len(unique))
    np.add.at(fused, slot, weights)  # dense first, in ranking order, as a running sum would add them
    order = np.lexsort((unique, -fused))
    return unique[order], fused[order]
