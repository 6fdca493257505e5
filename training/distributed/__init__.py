"""Distributed execution on Dask (``dask.distributed``): the training pipeline in partitions across workers.

Given a scheduler address the pipeline parses/imports judgments, extracts features and encodes
them in partitions on the workers, trains the LightGBM range models with ``lightgbm.dask``, and
builds the FAISS index as shards that :class:`retrieval.shards.ShardedIndex` searches as one.
Stages hand over through Parquet files (:mod:`training.distributed.stages`). Deployment:
docs/distributed.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.distributed.cluster import close, connect, run_tasks
    from training.distributed.pipeline import (
        DistributedConfig,
        PipelineSummary,
        StageSummary,
        run_pipeline,
        stage_features,
        stage_import,
        stage_index,
        stage_train,
        train_from_store,
    )
    from training.distributed.stages import HoldoutRule, plan_input, plan_store

# Imported when first used (PEP 562): the pipeline pulls in Dask, LightGBM and scikit-learn, about
# 2.5 s that every ``sentencing`` command paid at start only to register ``sentencing distributed``.
_HOMES = {
    **dict.fromkeys(("close", "connect", "run_tasks"), "training.distributed.cluster"),
    **dict.fromkeys(
        ("DistributedConfig", "PipelineSummary", "StageSummary", "run_pipeline", "stage_features", "stage_import",
         "stage_index", "stage_train", "train_from_store"),
        "training.distributed.pipeline",
    ),
    **dict.fromkeys(("HoldoutRule", "plan_input", "plan_store"), "training.distributed.stages"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "DistributedConfig",
    "HoldoutRule",
    "PipelineSummary",
    "StageSummary",
    "close",
    "connect",
    "plan_input",
    "plan_store",
    "run_pipeline",
    "run_tasks",
    "stage_features",
    "stage_import",
    "stage_index",
    "stage_train",
    "train_from_store",
]
