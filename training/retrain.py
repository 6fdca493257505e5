"""Routine, safe retraining: new judgments in the store → a candidate version → promoted only if not worse.

One run:

1. sweep what a killed run left in the registry; read the serving version and the store sequence
   number up to which it was trained;
2. train the range models on every stored case up to the store's current sequence number, except
   the **held-back slice** (a fixed 20% of real cases, chosen by a hash of the case id, so it is the
   same slice for every version and never trained on); the rows of cases an earlier run featurised
   come back from the registry's feature cache (:mod:`training.feature_cache`);
3. update the retrieval index incrementally (copy the serving index, add the new cases), or
   rebuild it — retraining the encoder — when the corpus has grown past ``encoder_growth`` since the
   encoder was trained, or when no index exists yet;
4. score candidate and serving version on the held-back slice (at most ``evaluate_max_cases`` of it,
   the same sample for both) and apply the promotion rule (:class:`PromotionRule`); register the
   candidate either way, with the reason;
5. promote by an atomic switch of the registry's ``CURRENT``.

A run killed at any point leaves the serving version and the registry consistent: the candidate
becomes visible only once complete, and ``CURRENT`` changes in one ``os.replace``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, Field

from sentencing.case import Case
from sentencing.config import Settings, load_settings
from sentencing.store import CaseStore
from training.registry import ModelRegistry, VersionInfo

if TYPE_CHECKING:
    from training.distributed.stages import HoldoutRule

log = logging.getLogger("liangxing.retrain")
T = TypeVar("T")
FEATURE_CACHE = "feature-cache"
"""The registry's folder of :mod:`training.feature_cache`."""


class PromotionRule(BaseModel):
    """When a candidate may replace the serving version ("not worse", on the same held-back slice).

    All must hold: CAIL score ≥ serving − ``cail_tolerance`` points; MAE ≤ serving × (1 +
    ``mae_tolerance``); range coverage at least as close to the nominal level as the serving
    version's, or within ``coverage_band``. The first version is promoted when it has been scored.
    """

    cail_tolerance: float = Field(default=0.5, description="points; negative demands an improvement")
    mae_tolerance: float = Field(default=0.02, ge=0)
    coverage_band: tuple[float, float] = (0.75, 0.85)

    def decide(self, candidate: dict[str, Any], serving: dict[str, Any] | None) -> tuple[bool, str]:
        if not candidate or candidate.get("n_defendants", 0) == 0:
            return False, "the held-back slice has no sentenced defendant: nothing to judge the candidate by"
        if serving is None:
            return True, "first version: nothing serving to compare with"
        reasons = []
        if candidate["cail_score"] < serving["cail_score"] - self.cail_tolerance:
            reasons.append(f"CAIL score {candidate['cail_score']:.2f} < serving {serving['cail_score']:.2f} − "
                           f"{self.cail_tolerance}")
        if candidate["mae_months"] > serving["mae_months"] * (1 + self.mae_tolerance):
            reasons.append(f"MAE {candidate['mae_months']:.2f} > serving {serving['mae_months']:.2f} × "
                           f"{1 + self.mae_tolerance}")
        lo, hi = self.coverage_band
        cov, old = candidate.get("coverage"), serving.get("coverage")
        if cov is not None and not lo <= cov <= hi and old is not None:
            nominal = (lo + hi) / 2
            if abs(cov - nominal) > abs(old - nominal):
                reasons.append(
                    f"coverage {cov:.3f} outside {lo}–{hi} and further from {nominal} than serving {old:.3f}"
                )
        if reasons:
            return False, "; ".join(reasons)
        return True, (f"not worse: CAIL {candidate['cail_score']:.2f} vs {serving['cail_score']:.2f}, "
                      f"MAE {candidate['mae_months']:.2f} vs {serving['mae_months']:.2f}")


class RetrainConfig(BaseModel):
    holdout_share: float = Field(default=0.2, gt=0, lt=1, description="share of real cases held back")
    evaluate_max_cases: int = Field(
        default=20_000, ge=1,
        description="score candidate and serving version on at most this many held-back cases (those whose hash "
        "is lowest, so the same ones each run): 20% of a 1M-case store is 200k cases, two predictions each, "
        "minutes for no better a decision",
    )
    encoder_growth: float = Field(default=0.5, ge=0, description="rebuild the index and encoder past this growth")
    rule: PromotionRule = Field(default_factory=PromotionRule)
    with_index: bool = True
    feature_cache: bool = Field(
        default=True, description="reuse the training rows of cases featurised by earlier runs (local training)"
    )


class StageTiming(BaseModel):
    stage: str
    seconds: float
    cases: int = 0


class RetrainReport(BaseModel):
    version: str | None
    promoted: bool
    reason: str
    serving: str | None
    new_cases: int
    trained_cases: int
    held_back_cases: int
    held_back_real: bool
    index_mode: str | None = None
    feature_cache: dict[str, int] | None = None
    """Training rows read back from the feature cache and computed by this run (local training)."""
    candidate_metrics: dict[str, Any] = Field(default_factory=dict)
    serving_metrics: dict[str, Any] | None = None
    stages: list[StageTiming] = Field(default_factory=list)


def _slice_position(case_id: str) -> int:
    return int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:4], "big")


def held_back(case: Case, share: float) -> bool:
    """Whether a case belongs to the fixed evaluation slice: the same answer for every run and version."""
    return in_slice(case.id, share)


def in_slice(case_id: str, share: float) -> bool:
    """:func:`held_back` by the case id alone."""
    return _slice_position(case_id) < share * 2**32


class EvaluationSample(Generic[T]):
    """The held-back cases a run scores: at most ``limit``, those lowest in the slice's hash order.

    Bounded while streaming (a heap), so a million-case store never holds its 200k-case slice in
    memory; the same store gives the same sample, and candidate and serving version see the same one.
    What is kept per case is the caller's: the case, or its sequence number to fetch it later.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._heap: list[tuple[int, int, T]] = []  # (−position, seq, item): the root is the one to drop

    def offer(self, seq: int, case_id: str, item: T) -> None:
        entry = (-_slice_position(case_id), seq, item)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
        elif entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)

    def items(self) -> list[T]:
        """In store order."""
        return [item for _, _, item in sorted(self._heap, key=lambda entry: entry[1])]


def _stream(store: CaseStore, *, upto: int, after: int = 0) -> Iterator[tuple[int, Case]]:
    for stored in store.iter_stored(after_rowid=after):
        if stored.seq > upto:
            return
        yield stored.seq, stored.case


def retrain(
    store: CaseStore,
    registry: ModelRegistry,
    *,
    config: RetrainConfig | None = None,
    settings: Settings | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    progress: Callable[[str], None] = lambda msg: None,
    scheduler: str | Any | None = None,
) -> RetrainReport:
    """One retraining run; see the module docstring. Never changes what serves unless promoting.

    With ``scheduler`` (a Dask address, ``local:N`` or a Client) the training stage runs on the
    cluster (:mod:`training.distributed`); the index update and the evaluation stay here.
    """
    with registry.exclusive():  # one run at a time: another would sweep this one's files as leftovers
        return _retrain(store, registry, config or RetrainConfig(), settings or load_settings(), now, progress,
                        scheduler)


def _retrain(store: CaseStore, registry: ModelRegistry, config: RetrainConfig, settings: Settings,
             now: Callable[[], dt.datetime], progress: Callable[[str], None], scheduler: str | Any | None,
             ) -> RetrainReport:
    from features.extract import FeatureExtractor
    from features.spec import build_spec
    from sentencing.charges import default_catalogue
    from training.distributed.stages import HoldoutRule
    from training.evaluate import evaluate
    from training.feature_cache import CacheUse, FeatureCache
    from training.predictor import RangePredictor
    from training.train import TrainConfig, train, train_dataset

    swept = registry.sweep()
    if swept:
        log.info("swept incomplete versions left by a killed run: %s", ", ".join(swept))
    serving = registry.current()
    upto = store.max_seq()
    since = serving.store_seq if serving else 0
    new_cases = store.count(after_rowid=since) - store.count(after_rowid=upto)
    if serving is not None and new_cases == 0:
        return RetrainReport(version=None, promoted=False, reason="no case added since the serving version",
                             serving=serving.id, new_cases=0, trained_cases=0, held_back_cases=0,
                             held_back_real=False)
    has_real = store.count(synthetic=False) > 0
    # Held back from real cases when there are any; a synthetic-only store holds back synthetic ones.
    holdout = HoldoutRule(config.holdout_share, has_real)

    created = now().replace(microsecond=0)
    version_id = f"v{created:%Y%m%dT%H%M%SZ}-s{upto}"
    stages: list[StageTiming] = []
    info = VersionInfo(id=version_id, created=created, parent=serving.id if serving else None, store_seq=upto)
    cache_use: CacheUse | None = None

    with registry.staging(version_id) as folder:
        progress(f"training range models on cases up to sequence {upto}")
        t = time.perf_counter()
        counted = {"train": 0, "held": 0}
        if scheduler is not None or config.feature_cache:
            # Which cases train and which are held back needs no case body: the store's key columns.
            seq_sample: EvaluationSample[int] = EvaluationSample(config.evaluate_max_cases)
            wanted: list[tuple[int, str]] = []
            for key in store.keys(upto=upto):
                if holdout.holds(key.synthetic, key.id):
                    counted["held"] += 1
                    seq_sample.offer(key.seq, key.id, key.seq)
                else:
                    wanted.append((key.seq, key.content_hash))
            counted["train"] = len(wanted)
        if scheduler is not None:
            counted.update(_train_on_cluster(scheduler, store, folder, upto, holdout))
            held = [stored.case for stored in store.iter_seqs(seq_sample.items())]
        elif config.feature_cache:
            catalogue = default_catalogue()
            spec = build_spec(catalogue)
            cache = FeatureCache(registry.root / FEATURE_CACHE, spec)
            train_config = TrainConfig()
            ds, cache_use = cache.dataset(wanted, lambda seqs: ((s.seq, s.case) for s in store.iter_seqs(seqs)),
                                          FeatureExtractor(spec, catalogue), progress, texts=train_config.text)
            stages.append(StageTiming(stage="features", seconds=time.perf_counter() - t,
                                      cases=cache_use.computed_cases))
            t = time.perf_counter()
            train_dataset(ds, spec, folder / "model", config=train_config)
            del ds
            held = [stored.case for stored in store.iter_seqs(seq_sample.items())]
        else:
            stream_sample: EvaluationSample[Case] = EvaluationSample(config.evaluate_max_cases)

            def training_cases() -> Iterator[Case]:  # one pass over the store: the sample fills as it goes
                for seq, case in _stream(store, upto=upto):
                    if holdout.held(case):
                        counted["held"] += 1
                        stream_sample.offer(seq, case.id, case)
                    else:
                        counted["train"] += 1
                        yield case

            train(training_cases(), folder / "model")
            held = stream_sample.items()
        stages.append(StageTiming(stage="train", seconds=time.perf_counter() - t, cases=counted["train"]))

        if config.with_index:
            t = time.perf_counter()
            info.has_index = True
            mode = _update_index(store, registry, serving, folder / "index", upto, since, config, settings, progress)
            stages.append(StageTiming(stage=f"index ({mode})", seconds=time.perf_counter() - t,
                                      cases=new_cases if mode == "incremental" else upto))
        else:
            mode = None

        progress(f"scoring candidate and serving version on {len(held)} held-back cases")
        t = time.perf_counter()
        candidate = RangePredictor.load(folder / "model")
        cand_metrics, _ = evaluate(candidate, held) if held else ({}, [])
        serving_metrics = None
        if serving is not None and held:
            serving_metrics, _ = evaluate(RangePredictor.load(registry.model_dir(serving.id)), held)
        stages.append(StageTiming(stage="evaluate", seconds=time.perf_counter() - t, cases=len(held)))
        promote, reason = config.rule.decide(_headline(cand_metrics), _headline(serving_metrics) if serving else None)

        info.n_cases = counted["train"]
        info.model_version = candidate.version
        info.ruleset_version = candidate.ruleset_version
        info.data_hash = candidate.data_hash
        info.metrics = _headline(cand_metrics)
        info.parent_metrics = _headline(serving_metrics) if serving_metrics else {}
        info.decision = "accepted" if promote else "rejected"
        info.reason = reason
        info.timings_s = {s.stage: round(s.seconds, 3) for s in stages}
        registry.write_info(folder, info)

    if promote:
        registry.promote(version_id, reason=reason)
    return RetrainReport(
        version=version_id, promoted=promote, reason=reason, serving=registry.current_id(), new_cases=new_cases,
        trained_cases=counted["train"], held_back_cases=counted["held"], held_back_real=has_real, index_mode=mode,
        candidate_metrics=info.metrics, serving_metrics=info.parent_metrics or None, stages=stages,
        feature_cache=None if cache_use is None else {"cached_cases": cache_use.cached_cases,
                                                      "computed_cases": cache_use.computed_cases,
                                                      "segments": cache_use.segments},
    )


def _train_on_cluster(scheduler: str | Any, store: CaseStore, folder: Path, upto: int,
                      holdout: HoldoutRule) -> dict[str, int]:
    """The training stage on a Dask cluster; returns the trained and held-back case counts."""
    from training.distributed import close, connect, train_from_store

    client = connect(scheduler)
    work = folder / ".distributed-work"
    try:
        done = train_from_store(client, store.path, folder / "model", upto=upto, holdout=holdout, work_dir=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if client is not scheduler:
            close(client)
    return {"train": done.cases - done.held_back_cases, "held": done.held_back_cases}


def _headline(metrics: dict[str, Any] | None) -> dict[str, Any]:
    if not metrics:
        return {}
    keys = ("n_defendants", "cail_score", "mae_months", "coverage", "mean_width_months", "custody_accuracy")
    return {k: metrics[k] for k in keys if k in metrics}


def _update_index(store: CaseStore, registry: ModelRegistry, serving: VersionInfo | None, target: Path, upto: int,
                  since: int, config: RetrainConfig, settings: Settings, progress: Callable[[str], None]) -> str:
    """Build ``target``: the serving index plus the new cases, or a full rebuild; returns which."""
    from retrieval.search import RetrievalIndex

    source = registry.index_dir(serving.id) if serving else None
    if source is not None:
        base = RetrievalIndex.load(source, settings=settings, mmap=True)
        indexed = int(base.manifest.get("live_rows", base.manifest.get("rows", 0)))
        trained_on = int(base.manifest.get("encoder_trained_rows", indexed) or indexed)
        growth = (upto - since) / max(trained_on, 1)
        if growth <= config.encoder_growth:
            progress(f"adding {upto - since} new cases to the serving index (no rebuild)")
            shutil.copytree(source, target)
            index = RetrievalIndex.load(target, settings=settings, mmap=False)
            index.add(case for _, case in _stream(store, upto=upto, after=since))
            index.save()
            return "incremental"
        progress(f"corpus grew {growth:.0%} since the encoder was trained: retraining it and rebuilding the index")
    else:
        progress("no serving index: building one")
    RetrievalIndex.build((case for _, case in _stream(store, upto=upto)), target, settings=settings)
    return "rebuild"
