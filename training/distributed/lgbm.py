"""Stage 3: the range models trained across Dask workers with ``lightgbm.dask``.

The same model as :func:`training.train.fit_models`, trained on the feature Parquet files:

* the three term quantiles are ``DaskLGBMRegressor`` fits of the residual over the guideline point
  with the same pinball gradient (LightGBM's built-in ``quantile`` objective refuses monotone
  constraints), the same monotone constraints, init scores and booster parameters;
* the conformal calibration (CQR) uses a 20% holdout of whole cases (by a hash of the case id),
  as ``fit_models`` does for large data: a fold model is fitted on the other 80% with Dask and
  predicts the holdout on the workers; the weight drawing the range toward the guideline
  (``training.models.choose_guideline_weight``) is chosen on that holdout too;
* the form classifier (severity and custody, two small multiclass boosters) is fitted **locally on
  a random sample** of at most ``form_sample`` defendants: it needs every class present and adds
  little; say so in the summary;
* per-charge medians come from the label columns.

The boosters end up in :class:`training.train.FittedModels` and go through the ordinary model
directory writer (:func:`training.artifacts.write_model_dir`), so serving cannot tell the difference.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.spec import FeatureSpec
from training.calibration import ConformalCalibration
from training.dataset import Dataset
from training.distributed.stages import feature_column
from training.models import (
    QUANTILE_NAMES,
    FormClassifier,
    RangeModel,
    as_regression_booster,
    choose_guideline_weight,
    draw_toward_guideline,
)
from training.train import FittedModels, TrainConfig, _range_model

log = logging.getLogger("liangxing.distributed")


class Pinball:
    """The pinball-loss gradient with unit hessian (picklable for the workers); see ``training.models``."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grad = np.where(y_true < y_pred, 1.0 - self.alpha, -self.alpha)
        return grad, np.ones_like(grad)


def _calibration_fold(case_id: str, share: float) -> bool:
    digest = hashlib.sha256(("calibration:" + case_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") < share * 2**32


def _mark_calibration(part: pd.DataFrame, share: float) -> pd.Series:
    return part["case_id"].map(lambda c: _calibration_fold(c, share)).astype(bool)


def _predict_part(part: pd.DataFrame, model: RangeModel, cols: list[str]) -> pd.DataFrame:
    X = part[cols].to_numpy(dtype=np.float64)
    pred = model.predict(X) if len(X) else np.zeros((0, 3))
    return pd.DataFrame(pred, columns=list(QUANTILE_NAMES), index=part.index)


def fit_range_dask(client: Any, ddf: Any, spec: FeatureSpec, config: TrainConfig, fallback: float,
                   init: dict[str, float]) -> RangeModel:
    """Three quantile boosters on the term rows of ``ddf`` (a dask DataFrame), trained by the workers."""
    import lightgbm as lgb

    model = _range_model(spec, config)
    model.offset_fallback_ = fallback
    cols = [feature_column(i) for i in range(spec.n_features)]
    X = ddf[cols]
    off = ddf[feature_column(spec.index("guideline_point"))]
    off = off.where(np.isfinite(off), fallback) if config.target == "residual" else off * 0.0
    residual = np.log1p(ddf["term_months"].astype("float64")) - off
    p = config.booster_params()
    extra: dict[str, Any] = {}
    if model.monotone is not None:
        extra = {"monotone_constraints": list(model.monotone), "monotone_constraints_method": "intermediate"}
    for name, alpha in zip(QUANTILE_NAMES, model.quantiles, strict=True):
        t = time.perf_counter()
        reg = lgb.DaskLGBMRegressor(
            client=client, objective=Pinball(alpha), n_estimators=p.n_estimators, learning_rate=p.learning_rate,
            num_leaves=p.num_leaves, max_depth=p.max_depth, min_child_samples=p.min_child_samples,
            colsample_bytree=p.feature_fraction, reg_lambda=p.lambda_l2, random_state=p.seed,
            deterministic=True, force_row_wise=True, max_bin=63, verbose=-1, **extra,
        )
        reg.fit(X, residual, init_score=residual * 0.0 + init[name])
        model.boosters_[name] = as_regression_booster(reg.booster_)
        model.init_[name] = init[name]
        log.info("trained quantile booster %s (alpha %.2f) across the workers in %.1f s", name, alpha,
                 time.perf_counter() - t)
    return model


def fit_models_dask(client: Any, feature_paths: Sequence[Path | str], spec: FeatureSpec, config: TrainConfig,
                    *, data_hash: str, form_sample: int = 200_000,
                    calibration_share: float = 0.2) -> tuple[FittedModels, Dataset]:
    """Stage 3: ``fit_models`` on the feature Parquet files; returns the models and a label-only Dataset."""
    import dask.dataframe as dd

    timings: dict[str, float] = {}
    paths = [str(p) for p in feature_paths]
    offset_col = feature_column(spec.index("guideline_point"))
    labels = dd.read_parquet(paths, columns=["term_months", "form", "case_id", "charge", "source", offset_col]
                             ).compute()
    term = labels["term_months"].to_numpy() >= 0
    if term.sum() < 20:
        raise ValueError(f"training needs at least 20 sentenced defendants with a term, got {int(term.sum())}")
    y = np.log1p(labels["term_months"].to_numpy()[term].astype(np.float64))
    fallback = float(np.median(y))
    off = labels[offset_col].to_numpy()[term].astype(np.float64)
    off = np.where(np.isfinite(off), off, fallback) if config.target == "residual" else np.zeros_like(y)
    residual = y - off
    init = {n: float(np.quantile(residual, a)) for n, a in zip(QUANTILE_NAMES, config.quantiles, strict=True)}

    ddf = dd.read_parquet(paths)
    ddf = ddf[ddf["term_months"] >= 0]
    ddf = ddf.assign(calibration=ddf.map_partitions(_mark_calibration, calibration_share, meta=("calibration", bool)))
    ddf = ddf.persist()

    t = time.perf_counter()
    fold = fit_range_dask(client, ddf[~ddf["calibration"]], spec, config, fallback, init)
    held = ddf[ddf["calibration"]]
    cols = [feature_column(i) for i in range(spec.n_features)]
    meta = pd.DataFrame({n: pd.Series(dtype="float64") for n in QUANTILE_NAMES})
    pred = held.map_partitions(_predict_part, fold, cols, meta=meta).compute()
    family_cols = [feature_column(i) for i in spec.family_columns[1]]
    truth = held[["term_months", offset_col, *family_cols]].compute()  # one pass over the holdout
    y_held = np.log1p(truth["term_months"].to_numpy(dtype=np.float64))
    guide = truth[offset_col].to_numpy(dtype=np.float64)
    families = spec.families_of(truth[family_cols].to_numpy(dtype=np.float64)) if config.calibrate_by_family else None
    q = np.column_stack([pred[n].to_numpy() for n in QUANTILE_NAMES])
    weight, oof_cail = choose_guideline_weight(q, guide, y_held)
    if config.guideline_weight is not None:
        weight = config.guideline_weight
    low, point, high = draw_toward_guideline(q, guide, weight).T
    calibration = ConformalCalibration.fit(low, high, y_held, confidence=config.confidence,
                                           source=f"{calibration_share:.0%} case holdout (distributed fold model)",
                                           groups=families)
    timings["calibration_folds"] = time.perf_counter() - t

    t = time.perf_counter()
    range_model = fit_range_dask(client, ddf, spec, config, fallback, init)
    range_model.guideline_weight_ = weight
    timings["range_model"] = time.perf_counter() - t

    t = time.perf_counter()
    n_all = len(labels)
    frac = min(1.0, form_sample / max(n_all, 1))
    sample = dd.read_parquet(paths, columns=[*cols, "form"])
    sample = (sample.sample(frac=frac, random_state=config.seed) if frac < 1.0 else sample).compute()
    form_classifier = FormClassifier(params=config.booster_params()).fit(
        sample[cols].to_numpy(dtype=np.float64), sample["form"].tolist()
    )
    timings["form_classifier"] = time.perf_counter() - t
    log.info("form classifier fitted locally on %d of %d defendants", len(sample), n_all)

    months = labels["term_months"].to_numpy()
    medians = {str(c): float(np.median(g[g >= 0])) for c, g in
               labels.groupby("charge")["term_months"] if (g >= 0).any()}
    medians["*"] = float(np.median(months[months >= 0])) if (months >= 0).any() else 0.0

    lo_c, hi_c = calibration.apply(low, high, groups=families)
    oof = {
        "oof_defendants": len(y_held),
        "oof_mae_months": float(np.mean(np.abs(np.expm1(point) - np.expm1(y_held)))),
        "oof_coverage_calibrated": float(np.mean((lo_c <= y_held) & (y_held <= hi_c))),
        "oof_coverage_raw": float(np.mean((low <= y_held) & (y_held <= high))),
        "calibration_margin_log": calibration.margin(),
        "guideline_weight": weight,
        "oof_cail_by_guideline_weight": oof_cail,
        "form_sample_defendants": len(sample),
    }
    fitted = FittedModels(spec=spec, config=config, range_model=range_model, form_classifier=form_classifier,
                          calibration=calibration, charge_medians=medians, oof_metrics=oof, timings_s=timings)
    codes, _ = pd.factorize(labels["case_id"])
    ds = Dataset(X=np.zeros((n_all, 0)), term_months=months.astype(np.int64), forms=labels["form"].tolist(),
                 groups=codes.astype(np.int64), case_ids=labels["case_id"].tolist(),
                 charges=labels["charge"].tolist(), sources=labels["source"].tolist(),
                 units=np.zeros(n_all, dtype=bool), data_hash=data_hash)
    return fitted, ds
