"""Distributed execution on Dask (``dask.distributed``): the training pipeline in partitions across workers.

Given a scheduler address the pipeline parses/imports judgments, extracts features and encodes
them in partitions on the workers, trains the LightGBM range models with ``lightgbm.dask``, and
builds the FAISS index as shards that :class:`retrieval.shards.ShardedIndex` searches as one.
Stages hand over through Parquet files (:mod:`training.distributed.stages`). Deployment:
docs/distributed.md.
"""

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
