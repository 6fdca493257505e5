"""The distributed pipeline end to end: import → features → LightGBM → index shards, on a Dask cluster.

``run_pipeline`` takes judgment files; ``train_from_store`` is what ``retrain(..., scheduler=…)``
calls (stage 1 reads sequence ranges of the SQLite case store instead of files). The working
Parquet files go to ``work_dir``, which — like the inputs, the store and the outputs — must be
on storage that every worker sees (the same path on every machine; see docs/distributed.md).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sentencing.atomic import replace_dir
from sentencing.config import Settings, load_settings
from training.distributed.cluster import run_tasks
from training.distributed.stages import (
    HoldoutRule,
    InputPartition,
    StorePartition,
    build_shard,
    combined_hash,
    export_store_partition,
    features_partition,
    import_partition,
    plan_input,
    plan_store,
    read_cases,
)
from training.train import TrainConfig

log = logging.getLogger("liangxing.distributed")


class DistributedConfig(BaseModel):
    cases_per_partition: int = Field(default=2_000, ge=1, description="cases per Parquet partition / task")
    shards: int | None = Field(default=None, ge=1, description="index shards (default: one per worker)")
    factory: str | None = Field(default=None, description="FAISS factory of every shard (default: by shard size)")
    form_sample: int = Field(default=200_000, ge=100, description="defendants the local form classifier uses")
    calibration_share: float = Field(default=0.2, gt=0, lt=1, description="cases held out for the CQR calibration")
    keep_work: bool = Field(default=False, description="keep the intermediate Parquet files")
    progress: bool = True


class StageSummary(BaseModel):
    stage: str
    seconds: float
    partitions: int = 0
    items: int = 0
    """Cases (import), defendant rows (features, train) or index rows (index)."""


class PipelineSummary(BaseModel):
    scheduler: str
    workers: int
    cases: int = 0
    import_errors: int = 0
    first_errors: list[str] = Field(default_factory=list)
    defendants: int = 0
    held_back_cases: int = 0
    model_dir: str | None = None
    index_dir: str | None = None
    shards: list[dict[str, Any]] = Field(default_factory=list)
    stages: list[StageSummary] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    def add(self, stage: str, started: float, partitions: int = 0, items: int = 0) -> None:
        s = StageSummary(stage=stage, seconds=round(time.perf_counter() - started, 3), partitions=partitions,
                         items=items)
        self.stages.append(s)
        log.info(json.dumps({"event": "stage_done", **s.model_dump()}, ensure_ascii=False))


def _workers(client: Any) -> int:
    return max(len(client.scheduler_info().get("workers", {})), 1)


def stage_import(client: Any, parts: Sequence[InputPartition | StorePartition], cases_dir: Path,
                 summary: PipelineSummary, show: bool) -> list[str]:
    """Stage 1 → cases Parquet files (in partition order)."""
    t = time.perf_counter()
    fn = import_partition if parts and isinstance(parts[0], InputPartition) else export_store_partition
    jobs = [(p, cases_dir / f"part-{i:05d}.parquet") for i, p in enumerate(parts)]
    results = run_tasks(client, "import", fn, jobs, show_progress=show)
    errors = [e for r in results for e in r["errors"]]
    summary.cases = sum(r["cases"] for r in results)
    summary.import_errors = len(errors)
    summary.first_errors = errors[:20]
    summary.add("import", t, len(jobs), summary.cases)
    return [r["path"] for r in results if r["cases"]]


def stage_features(client: Any, case_paths: Sequence[str], features_dir: Path, holdout: HoldoutRule | None,
                   summary: PipelineSummary, show: bool) -> tuple[list[str], str]:
    """Stage 2 → feature Parquet files and the combined training-data hash."""
    t = time.perf_counter()
    jobs = [(Path(p), features_dir / Path(p).name, holdout) for p in case_paths]
    results = run_tasks(client, "features", features_partition, jobs, show_progress=show)
    summary.defendants = sum(r["rows"] for r in results)
    summary.held_back_cases = sum(r["held"] for r in results)
    summary.add("features", t, len(jobs), summary.defendants)
    kept = [r for r in results if r["rows"]]
    return [r["path"] for r in kept], combined_hash([r["data_hash"] for r in kept])


def stage_train(client: Any, feature_paths: Sequence[str], model_dir: Path, data_hash: str,
                config: DistributedConfig, train_config: TrainConfig, summary: PipelineSummary) -> Path:
    """Stage 3: LightGBM across the workers → an ordinary model directory (written atomically)."""
    from features.spec import build_spec
    from sentencing.charges import default_catalogue
    from training.artifacts import write_model_dir
    from training.distributed.lgbm import fit_models_dask

    t = time.perf_counter()
    if not feature_paths:
        raise ValueError("no sentenced defendant in the training cases")
    spec = build_spec(default_catalogue())
    fitted, ds = fit_models_dask(client, feature_paths, spec, train_config, data_hash=data_hash,
                                 form_sample=config.form_sample, calibration_share=config.calibration_share)
    fitted.timings_s["features"] = next((s.seconds for s in summary.stages if s.stage == "features"), 0.0)
    write_model_dir(fitted, ds, model_dir)
    summary.model_dir = str(model_dir)
    summary.metrics = dict(fitted.oof_metrics)
    sampled = fitted.oof_metrics.get("form_sample_defendants", len(ds))
    if sampled < len(ds):
        summary.notes.append(f"form classifier fitted locally on a random sample of {sampled} of {len(ds)} "
                             "defendants; the term range models on all of them across the workers")
    summary.add("train", t, len(feature_paths), len(ds))
    return model_dir


def stage_index(client: Any, case_paths: Sequence[str], index_dir: Path, config: DistributedConfig,
                settings: Settings, summary: PipelineSummary, show: bool) -> Path:
    """Stage 4: train the encoder once (locally, on the head of the corpus), then encode and index the
    partitions as shards on the workers; the sharded directory is swapped in only when complete."""
    from retrieval.search import train_corpus_encoder
    from retrieval.shards import shard_name, write_shard_manifest

    t = time.perf_counter()
    index_dir = Path(index_dir)
    staging = index_dir.with_name(f".{index_dir.name}.building-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        train_corpus_encoder(read_cases(case_paths), staging / "encoder", settings)
        summary.add("encoder", t, 1, min(settings.retrieval_train_max, summary.defendants or 0))
        t = time.perf_counter()
        n = min(config.shards or _workers(client), len(case_paths))
        groups = [list(case_paths[i::n]) for i in range(n)]
        overrides = settings.model_dump()
        jobs = [(g, staging / shard_name(i), staging / "encoder", config.factory, overrides)
                for i, g in enumerate(groups)]
        results = run_tasks(client, "index", build_shard, jobs, show_progress=show)
        write_shard_manifest(staging, [shard_name(i) for i in range(n)])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_dir(staging, index_dir)
    summary.index_dir = str(index_dir)
    summary.shards = [{"rows": r["rows"], "factory": r["factory"], "seconds": round(r["seconds"], 2)}
                      for r in results]
    summary.add("index", t, n, sum(r["rows"] for r in results))
    return index_dir


def run_pipeline(
    client: Any,
    *,
    fmt: str,
    paths: Sequence[Path | str],
    work_dir: Path,
    model_dir: Path | None = None,
    index_dir: Path | None = None,
    config: DistributedConfig | None = None,
    train_config: TrainConfig | None = None,
    settings: Settings | None = None,
) -> PipelineSummary:
    """Judgment files → model directory and/or sharded index, every heavy stage on the workers."""
    config = config or DistributedConfig()
    settings = settings or load_settings()
    summary = PipelineSummary(scheduler=str(client.scheduler.address), workers=_workers(client))
    work = Path(work_dir) / f"run-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    try:
        t = time.perf_counter()
        parts = plan_input(fmt, paths, config.cases_per_partition)
        summary.add("plan", t, len(parts))
        case_paths = stage_import(client, parts, work / "cases", summary, config.progress)
        if not case_paths:
            raise ValueError(f"no case could be read from {', '.join(map(str, paths))} "
                             f"({summary.import_errors} bad lines; first: {summary.first_errors[:1]})")
        if model_dir is not None:
            feats, data_hash = stage_features(client, case_paths, work / "features", None, summary, config.progress)
            stage_train(client, feats, Path(model_dir), data_hash, config, train_config or TrainConfig(), summary)
        if index_dir is not None:
            stage_index(client, case_paths, Path(index_dir), config, settings, summary, config.progress)
    finally:
        if not config.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    log.info(json.dumps({"event": "pipeline_done", **summary.model_dump(exclude={"first_errors"})},
                        ensure_ascii=False))
    return summary


def train_from_store(
    client: Any,
    store_path: Path,
    model_dir: Path,
    *,
    upto: int,
    holdout: HoldoutRule,
    work_dir: Path,
    config: DistributedConfig | None = None,
    train_config: TrainConfig | None = None,
) -> PipelineSummary:
    """The retraining stage on the cluster: stored cases up to ``upto``, minus the held-back slice."""
    config = config or DistributedConfig()
    summary = PipelineSummary(scheduler=str(client.scheduler.address), workers=_workers(client))
    work = Path(work_dir) / f"retrain-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    try:
        t = time.perf_counter()
        parts = plan_store(Path(store_path), upto=upto, cases_per_partition=config.cases_per_partition)
        summary.add("plan", t, len(parts))
        case_paths = stage_import(client, parts, work / "cases", summary, config.progress)
        feats, data_hash = stage_features(client, case_paths, work / "features", holdout, summary, config.progress)
        stage_train(client, feats, Path(model_dir), data_hash, config, train_config or TrainConfig(), summary)
    finally:
        if not config.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    return summary
