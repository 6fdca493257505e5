"""Training: cases → a complete, versioned model directory (the one entry point the service calls).

``fit_models`` fits the range model, the form classifier and the conformal calibration on a
:class:`Dataset`; ``train`` adds feature extraction and writes everything with
:mod:`training.artifacts`, atomically.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from features.extract import FeatureExtractor
from features.spec import FeatureSpec, build_spec
from features.text import TextEstimator
from sentencing.case import Case
from sentencing.charges import ChargeCatalogue, default_catalogue
from training.calibration import ConformalCalibration
from training.dataset import Dataset, build_dataset
from training.models import (
    BoosterParams,
    FormClassifier,
    LegalLimits,
    RangeModel,
    choose_guideline_weight,
    draw_toward_guideline,
)


class TrainConfig(BaseModel):
    """Every knob of training; saved in the model directory with the model."""

    model_config = ConfigDict(extra="forbid")

    confidence: float = Field(default=0.8, gt=0.0, lt=1.0, description="nominal coverage of the served range")
    target: Literal["log", "residual"] = Field(
        default="log", description="learn ln(1+months) directly, or its residual over the guideline point"
    )
    # "log" won the 5-fold CV on the real data (benchmarks/eval_models.py): same CAIL score as
    # "residual", lower MAE and a narrower calibrated range at the same coverage.
    monotone: bool = Field(default=True, description="legal-direction monotone constraints on the term models")
    guideline_weight: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="draw the range toward the guideline engine's point by this share of the distance "
        "(training.models.draw_toward_guideline); None: the weight of 0, 0.1, …, 1 whose out-of-fold points "
        "score best on the CAIL log score",
    )
    calibrate_by_family: bool = Field(
        default=True, description="a charge family with enough held-out defendants gets its own conformal margin "
        "(training.calibration.MIN_GROUP), so that the range's coverage holds family by family",
    )
    n_estimators: int = Field(default=150, ge=1)
    learning_rate: float = Field(default=0.08, gt=0.0)
    num_leaves: int = Field(default=15, ge=2)
    max_depth: int = Field(default=5, ge=1, description="bounds the cost of per-feature contributions (TreeSHAP)")
    min_child_samples: int = Field(default=10, ge=1)
    feature_fraction: float = Field(default=0.9, gt=0.0, le=1.0)
    calibration_folds: int = Field(default=3, ge=2, description="out-of-fold predictions for CQR")
    holdout_above: int = Field(
        default=50_000, ge=100,
        description="above this many term rows: split conformal (train on 80%, calibrate on 20%, no refit)",
    )
    form_max_rows: int = Field(default=200_000, ge=100, description="form classifier trains on a sample this large")
    text: bool = Field(
        default=False,
        description="add the TF-IDF text estimate as a feature (features.text): on the real data 5-fold CAIL "
        "+0.8 to +2.0 and MAE −0.2 to −1.0 months over three fold seeds (benchmarks/eval_models.py --variants "
        "log,text), for about 0.16 ms more per case served (predict_case alone takes about 0.25)",
    )
    num_threads: int = Field(
        default=1, ge=1, description="LightGBM threads; more than 1 is far slower when other processes share the cores"
    )
    seed: int = 0

    @property
    def quantiles(self) -> tuple[float, float, float]:
        tail = (1.0 - self.confidence) / 2
        return (tail, 0.5, 1.0 - tail)

    def booster_params(self) -> BoosterParams:
        return BoosterParams(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            max_depth=self.max_depth,
            min_child_samples=self.min_child_samples, feature_fraction=self.feature_fraction,
            num_threads=self.num_threads, seed=self.seed,
        )


@dataclass
class FittedModels:
    spec: FeatureSpec
    config: TrainConfig
    range_model: RangeModel
    form_classifier: FormClassifier
    calibration: ConformalCalibration
    charge_medians: dict[str, float]
    """Median term (months) per canonical charge in the training data: the simplest baseline."""
    text: TextEstimator | None = None
    oof_metrics: dict[str, float] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def with_text(self, X: np.ndarray, texts: list[str]) -> np.ndarray:
        """X with the text-estimate column filled (a copy); unchanged without a text model."""
        if self.text is None:
            return X
        X = X.copy()
        X[:, self.spec.index("text_estimate")] = self.text.predict(texts)
        return X

    def predict(self, X: np.ndarray, confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Native-LightGBM twin of ``RangePredictor.predict_matrix``: (n, 3) months, (n, 5) P(form)."""
        groups = self.spec.row_families(X) if self.calibration.group_scores else None
        months = self.calibration.to_months(self.range_model.predict(X), confidence, groups)
        proba = self.form_classifier.predict_proba(X)
        self.legal_limits.apply(months, proba, X, self.calibration.confidence if confidence is None else confidence)
        return months, proba

    @cached_property
    def legal_limits(self) -> LegalLimits:
        """The law's limits, built once: those by charge only when the spec's rule set is the bundled
        one (for another the served predictor, which loads its catalogue, applies them)."""
        catalogue = default_catalogue()
        return LegalLimits(self.spec, catalogue if catalogue.version == self.spec.ruleset_version else None)


def _range_model(spec: FeatureSpec, config: TrainConfig) -> RangeModel:
    return RangeModel(
        quantiles=config.quantiles,
        target=config.target,
        offset_column=spec.index("guideline_point"),
        monotone=spec.monotone if config.monotone else None,
        params=config.booster_params(),
    )


def group_folds(groups: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """k folds of row indices with every group (case) wholly inside one fold."""
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    order = rng.permutation(unique)
    fold_of = {g: i % k for i, g in enumerate(order)}
    assignment = np.array([fold_of[g] for g in groups])
    return [np.flatnonzero(assignment == i) for i in range(k)]


def fit_models(ds: Dataset, spec: FeatureSpec, config: TrainConfig | None = None,
               init_from: FittedModels | None = None) -> FittedModels:
    """Fit range model, form classifier and calibration; ``init_from`` continues a pre-trained model."""
    config = config or TrainConfig()
    if ds.units.any():  # 被告单位: the law fixes the outcome (a fine), nothing for the models to learn
        ds = ds.subset(~ds.units)
    timings: dict[str, float] = {}
    text_model: TextEstimator | None = None
    if config.text:
        t = time.perf_counter()
        ds, text_model = _stack_text(ds, spec, config)
        timings["text"] = time.perf_counter() - t
    term = ds.has_term
    if term.sum() < 20:
        raise ValueError(f"training needs at least 20 sentenced defendants with a term, got {int(term.sum())}")
    # Term rows as indices into ds.X, not a copy of them: at a million rows a copy is 3 GB, and the
    # split-conformal fold below copies the rows it trains on anyway.
    term_rows = np.flatnonzero(term)
    y = ds.y_log[term]
    groups = ds.groups[term]
    init_range = init_from.range_model if init_from else None

    # Held-out predictions for the conformal calibration.
    t = time.perf_counter()
    low = np.empty(len(y))
    high = np.empty(len(y))
    point = np.empty(len(y))
    if len(y) > config.holdout_above:
        folds = group_folds(groups, 5, config.seed)[:1]
        source = "20% group holdout (split conformal)"
    else:
        folds = group_folds(groups, config.calibration_folds, config.seed)
        source = f"{config.calibration_folds}-fold out-of-fold (cases kept whole)"
    held = np.zeros(len(y), dtype=bool)
    model = None
    for fold in folds:
        train_rows = np.setdiff1d(np.arange(len(y)), fold)
        model = _range_model(spec, config).fit(ds.X[term_rows[train_rows]], y[train_rows], init_from=init_range)
        pred = model.predict(ds.X[term_rows[fold]])
        low[fold], point[fold], high[fold] = pred[:, 0], pred[:, 1], pred[:, 2]
        held[fold] = True
    guide = ds.X[term_rows, spec.index("guideline_point")]
    oof_q = np.column_stack([low, point, high])[held]
    weight, oof_cail = choose_guideline_weight(oof_q, guide[held], y[held])
    if config.guideline_weight is not None:
        weight = config.guideline_weight
    low[held], point[held], high[held] = draw_toward_guideline(oof_q, guide[held], weight).T
    families = spec.row_families(ds.X[term_rows[held]]) if config.calibrate_by_family else None
    calibration = ConformalCalibration.fit(low[held], high[held], y[held], confidence=config.confidence,
                                           source=source, groups=families)
    timings["calibration_folds"] = time.perf_counter() - t

    t = time.perf_counter()
    if len(folds) == 1 and model is not None:
        range_model = model  # split conformal: serve the model the holdout calibrated, no refit
    else:
        range_model = _range_model(spec, config).fit(ds.X if term.all() else ds.X[term_rows], y, init_from=init_range)
    range_model.guideline_weight_ = weight
    timings["range_model"] = time.perf_counter() - t
    t = time.perf_counter()
    form_rows = np.arange(len(ds))
    if len(form_rows) > config.form_max_rows:
        form_rows = np.sort(np.random.default_rng(config.seed).choice(form_rows, config.form_max_rows, replace=False))
    form_classifier = FormClassifier(params=config.booster_params()).fit(
        ds.X[form_rows], [ds.forms[i] for i in form_rows]
    )
    timings["form_classifier"] = time.perf_counter() - t

    medians: dict[str, float] = {}
    months = ds.term_months
    for charge in sorted(set(ds.charges)):
        m = months[[c == charge and months[i] >= 0 for i, c in enumerate(ds.charges)]]
        if len(m):
            medians[charge] = float(np.median(m))
    medians["*"] = float(np.median(months[months >= 0])) if (months >= 0).any() else 0.0

    yt = np.expm1(y[held])
    lo_c, hi_c = calibration.apply(low[held], high[held], groups=families)
    oof = {
        "oof_defendants": int(held.sum()),
        "oof_mae_months": float(np.mean(np.abs(np.expm1(point[held]) - yt))),
        "oof_coverage_calibrated": float(np.mean((lo_c <= y[held]) & (y[held] <= hi_c))),
        "oof_coverage_raw": float(np.mean((low[held] <= y[held]) & (y[held] <= high[held]))),
        "calibration_margin_log": calibration.margin(),
        "calibration_margin_log_by_family": {g: calibration.margin(group=g) for g in calibration.group_scores},
        "guideline_weight": weight,
        "oof_cail_by_guideline_weight": oof_cail,
    }
    return FittedModels(spec=spec, config=config, range_model=range_model, form_classifier=form_classifier,
                        calibration=calibration, charge_medians=medians, text=text_model, oof_metrics=oof,
                        timings_s=timings)


def _stack_text(ds: Dataset, spec: FeatureSpec, config: TrainConfig) -> tuple[Dataset, TextEstimator]:
    """Fill the text-estimate column out-of-fold (3 case-grouped folds); fit the served estimator on all."""
    if not ds.texts_loaded:
        raise ValueError("TrainConfig.text needs the facts' texts, and this dataset was read without them "
                         "(FeatureCache.dataset(texts=False))")
    col = spec.index("text_estimate")
    y = np.log1p(np.clip(ds.term_months, 0, None)).astype(np.float64)
    term = ds.has_term
    X = ds.X.copy()
    for fold in group_folds(ds.groups, 3, config.seed + 1):
        rest = np.setdiff1d(np.flatnonzero(term), fold)
        estimator = TextEstimator.fit([ds.texts[i] for i in rest], y[rest])
        X[fold, col] = estimator.predict([ds.texts[i] for i in fold])
    rows = np.flatnonzero(term)
    final = TextEstimator.fit([ds.texts[i] for i in rows], y[rows])
    out = ds.subset(np.arange(len(ds)))
    out.X = X
    return out, final


def prepare(cases: Iterable[Case], catalogue: ChargeCatalogue | None = None) -> tuple[Dataset, FeatureSpec]:
    """Cases → (dataset, spec) with the catalogue's vocabulary."""
    catalogue = catalogue or default_catalogue()
    spec = build_spec(catalogue)
    return build_dataset(cases, FeatureExtractor(spec, catalogue)), spec


def train(cases: Iterable[Case], out_dir: Path, *, config: TrainConfig | None = None,
          catalogue: ChargeCatalogue | None = None, init_from: FittedModels | None = None) -> Path:
    """Train on ``cases`` and write the model directory to ``out_dir`` atomically; returns ``out_dir``.

    An existing model at ``out_dir`` is replaced only once the new one is completely written.
    """
    t = time.perf_counter()
    ds, spec = prepare(cases, catalogue or default_catalogue())
    return train_dataset(ds, spec, out_dir, config=config, init_from=init_from,
                         features_s=time.perf_counter() - t)


def train_dataset(ds: Dataset, spec: FeatureSpec, out_dir: Path, *, config: TrainConfig | None = None,
                  init_from: FittedModels | None = None, features_s: float | None = None) -> Path:
    """:func:`train` on a dataset already built (e.g. read back from :mod:`training.feature_cache`)."""
    from training.artifacts import write_model_dir

    if len(ds) == 0:
        raise ValueError("no sentenced defendant in the training cases")
    fitted = fit_models(ds, spec, config or TrainConfig(), init_from=init_from)
    if features_s is not None:
        fitted.timings_s["features"] = features_s
    return write_model_dir(fitted, ds, out_dir)
