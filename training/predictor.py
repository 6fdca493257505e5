"""Serving a trained model: a case before judgment → one prediction per defendant.

Predicts through onnxruntime (one intra-op thread), all models in one merged graph; explanations
are decision-path contributions of the native point booster (training.explain: exact, and about
5× cheaper than ``pred_contrib``'s TreeSHAP; measured in benchmarks/bench_predict.py).

Within a case, an accessory's range never sits above the range of a principal of the same crime
(从犯应当从轻、减轻处罚): predictions that would are lowered to the principal's and say so in
``warnings``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
from pydantic import BaseModel, Field, ValidationError

from features.extract import FeatureExtractor, guideline_results
from features.spec import FeatureSpec, group_label
from features.text import TextEstimator, case_text
from sentencing.case import Case, CircumstanceCode, Role
from sentencing.charges import ChargeCatalogue, default_catalogue
from sentencing.guideline import GuidelineResult
from sentencing.sentence import SentenceForm
from training.artifacts import FORMAT_VERSION, MANIFEST
from training.calibration import ConformalCalibration
from training.explain import PathExplainer
from training.models import FORMS, QUANTILE_NAMES, combine_form_proba, finish_quantiles
from training.onnx_export import OnnxEnsemble


class ModelLoadError(Exception):
    """The model directory is missing, broken or incompatible with this code or rule set."""


class Contribution(BaseModel):
    group: str
    label: str = Field(description="中文说明")
    months: float = Field(description="months this group moves the point estimate (base: group 'base')")


class RangePrediction(BaseModel):
    low_months: float | None
    point_months: float | None
    high_months: float | None
    confidence: float = Field(description="nominal coverage of [low, high], e.g. 0.8")


class DefendantPrediction(BaseModel):
    name: str
    range: RangePrediction
    form: SentenceForm
    form_probabilities: dict[str, float]
    contributions: list[Contribution]
    guideline: GuidelineResult | None
    warnings: list[str] = Field(default_factory=list)


TOP_CONTRIBUTIONS = 10
"""Groups listed by name in an explanation; the rest are summed as 其他因素."""
_AGGRAVATING = frozenset({CircumstanceCode.RECIDIVIST, CircumstanceCode.PRIOR_RECORD})
_LESSER_ROLES = frozenset({Role.ACCESSORY, Role.COERCED})


def role_violations(case: Case, months: np.ndarray, resolve: Any) -> list[tuple[int, int]]:
    """(accessory, principal) index pairs whose ranges break 从犯 ≤ 主犯.

    A pair is comparable when both are charged with a common crime and the accessory has no
    aggravating circumstance (累犯, 前科) the principal lacks; ``months`` is (n, 3) low/point/high.
    """
    ds = case.defendants
    principals = [i for i, d in enumerate(ds) if d.role is Role.PRINCIPAL]
    if not principals:
        return []
    out: list[tuple[int, int]] = []
    for a, d in enumerate(ds):
        if d.role not in _LESSER_ROLES:
            continue
        charges_a = {resolve(c.name)[0] or c.name for c in d.charges}
        for p in principals:
            dp = ds[p]
            if not charges_a & {resolve(c.name)[0] or c.name for c in dp.charges}:
                continue
            if (d.circumstance_codes & _AGGRAVATING) - dp.circumstance_codes:
                continue
            if np.any(months[a] > months[p] + 1e-9):
                out.append((a, p))
    return out


def enforce_role_consistency(case: Case, months: np.ndarray, resolve: Any) -> list[int]:
    """Lower each violating accessory's low/point/high to its principal's; returns adjusted indices."""
    adjusted: list[int] = []
    for _ in range(len(case.defendants)):  # chains (coerced < accessory < principal) settle in n passes
        pairs = role_violations(case, months, resolve)
        if not pairs:
            break
        for a, p in pairs:
            months[a] = np.minimum(months[a], months[p])
            adjusted.append(a)
    return sorted(set(adjusted))


class RangePredictor:
    """A loaded model directory; ``predict_case`` is the serving call."""

    def __init__(self, model_dir: Path, manifest: dict[str, Any], spec: FeatureSpec,
                 calibration: ConformalCalibration, catalogue: ChargeCatalogue,
                 onnx_models: OnnxEnsemble, models: dict[str, dict[str, Any]],
                 contrib_booster: lgb.Booster, text: TextEstimator | None = None) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.version: str = manifest["version"]
        self.ruleset_version: str = manifest["ruleset_version"]
        self.data_hash: str = manifest["data_hash"]
        self.spec = spec
        self.calibration = calibration
        self.confidence = calibration.confidence
        self.catalogue = catalogue
        self.extractor = FeatureExtractor(spec, catalogue)
        self.onnx = onnx_models
        self._models = models
        self._init = np.array([models[f"term_{q}"]["init"] for q in QUANTILE_NAMES])
        rng = manifest["range"]
        self._residual = rng["target"] == "residual"
        self._offset_column = int(rng["offset_column"])
        self._offset_fallback = float(rng["offset_fallback"])
        self._contrib = contrib_booster
        self.text = text
        self._text_column = spec.index("text_estimate")
        self._explainer = PathExplainer(contrib_booster)
        self._group_ids = sorted(set(spec.groups))
        self._group_matrix = np.zeros((spec.n_features, len(self._group_ids)))
        self._group_matrix[np.arange(spec.n_features), [self._group_ids.index(g) for g in spec.groups]] = 1.0
        self._guideline_group = self._group_ids.index("guideline")

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, model_dir: Path, catalogue: ChargeCatalogue | None = None) -> RangePredictor:
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelLoadError(f"model directory not found: {model_dir}")
        try:
            manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelLoadError(
                f"{model_dir}: no {MANIFEST}; not a model directory (run `sentencing train`)"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelLoadError(f"{model_dir / MANIFEST}: not valid JSON ({e})") from None
        for key in ("format_version", "version", "ruleset_version", "data_hash", "models", "range"):
            if key not in manifest:
                raise ModelLoadError(f"{model_dir / MANIFEST}: field {key!r} is missing")
        if manifest["format_version"] != FORMAT_VERSION:
            raise ModelLoadError(
                f"{model_dir}: model format {manifest['format_version']!r}, this code reads {FORMAT_VERSION!r}; retrain"
            )
        catalogue = catalogue or default_catalogue()
        if manifest["ruleset_version"] != catalogue.version:
            raise ModelLoadError(
                f"{model_dir}: trained with rule set {manifest['ruleset_version']!r}, the loaded catalogue is "
                f"{catalogue.version!r}; retrain the model for this rule set"
            )
        try:
            spec = FeatureSpec.model_validate_json((model_dir / "feature_spec.json").read_text(encoding="utf-8"))
            spec.check_compatible()
            calibration = ConformalCalibration.model_validate_json(
                (model_dir / "calibration.json").read_text(encoding="utf-8")
            )
            calibration.margin()
        except FileNotFoundError as e:
            raise ModelLoadError(f"{model_dir}: missing file {Path(e.filename).name}") from None
        except (ValidationError, ValueError) as e:
            raise ModelLoadError(f"{model_dir}: feature spec or calibration invalid: {e}") from None
        models: dict[str, dict[str, Any]] = manifest["models"]
        parts: dict[str, tuple[bytes, bool]] = {}
        for name in (*(f"term_{q}" for q in QUANTILE_NAMES), "form_severity", "form_custody"):
            entry = models.get(name)
            if entry is None:
                raise ModelLoadError(f"{model_dir}: manifest lists no model {name!r}")
            if "onnx" not in entry:
                if entry.get("kind") == "multiclass" and len(entry.get("present", [])) == 1:
                    continue  # a single class in training: a constant, no booster
                raise ModelLoadError(f"{model_dir}: model {name!r} has no ONNX file")
            try:
                data = (model_dir / entry["onnx"]).read_bytes()
                onnx.load_from_string(data)
            except FileNotFoundError:
                raise ModelLoadError(f"{model_dir}: model file {entry['onnx']} is missing") from None
            except Exception as e:  # protobuf raises its own DecodeError for corrupt files
                raise ModelLoadError(f"{model_dir}: {entry['onnx']} is not a valid ONNX model ({e})") from None
            parts[name] = (data, entry["kind"] == "multiclass")
        try:
            ensemble = OnnxEnsemble(parts)
        except Exception as e:  # onnxruntime raises its own exception types for invalid graphs
            raise ModelLoadError(f"{model_dir}: the ONNX models do not load together ({e})") from None
        if ensemble.n_features != spec.n_features:
            raise ModelLoadError(f"{model_dir}: ONNX models expect {ensemble.n_features} features, "
                                 f"spec has {spec.n_features}")
        try:
            contrib = lgb.Booster(model_file=str(model_dir / models["term_point"]["native"]))
        except (lgb.basic.LightGBMError, KeyError, FileNotFoundError) as e:
            raise ModelLoadError(f"{model_dir}: native point model unreadable ({e})") from None
        if contrib.num_feature() != spec.n_features:
            raise ModelLoadError(f"{model_dir}: native point model has {contrib.num_feature()} features")
        text: TextEstimator | None = None
        if manifest.get("text_model"):
            try:
                text = TextEstimator.load(model_dir)
            except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as e:
                raise ModelLoadError(f"{model_dir}: text model unreadable ({e})") from None
        return cls(model_dir, manifest, spec, calibration, catalogue, ensemble, models, contrib, text)

    # ------------------------------------------------------------------ predicting

    def features(self, case: Case) -> tuple[np.ndarray, list[Any], list[str]]:
        results, warnings = guideline_results(case, self.catalogue)
        X = self.extractor.case_matrix(case, results)
        if self.text is not None:
            X[:, self._text_column] = self.text.predict_one(case_text(case.facts, case.reasoning))
        return X, results, warnings

    def predict_matrix(self, X: np.ndarray, confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3) months low/point/high calibrated to ``confidence`` (default: the served one), (n, 5) P(form)."""
        out = self.onnx.predict(X.astype(np.float32))
        raw = np.column_stack([out[f"term_{q}"] for q in QUANTILE_NAMES])
        if self._residual:
            offset = X[:, self._offset_column].copy()
            offset[~np.isfinite(offset)] = self._offset_fallback
        else:
            offset = np.zeros(len(X))
        months = self.calibration.to_months(finish_quantiles(raw + self._init, offset), confidence)
        severity = self._proba("form_severity", out, len(X))
        custody = self._proba("form_custody", out, len(X))
        return months, combine_form_proba(severity, custody)

    def _proba(self, name: str, out: dict[str, np.ndarray], n: int) -> np.ndarray:
        present = self._models[name]["present"]
        proba = np.zeros((n, 3))
        if name in out:
            proba[:, present] = out[name]
        else:
            proba[:, present[0]] = 1.0
        return proba

    def contributions(self, X: np.ndarray, point_months: np.ndarray) -> list[list[Contribution]]:
        """Per-group contributions in months, summing with the 'base' entry to the point estimate."""
        contrib = self._explainer.contributions(X)
        per_group = contrib[:, :-1] @ self._group_matrix
        bias = contrib[:, -1] + self._init[1]
        if self._residual:
            offset = X[:, self._offset_column]
            known = np.isfinite(offset)
            per_group[known, self._guideline_group] += offset[known] - self._offset_fallback
            bias = bias + self._offset_fallback
        base = np.expm1(np.maximum(bias, 0.0))
        out: list[list[Contribution]] = []
        for i in range(len(X)):
            total = per_group[i].sum()
            change = point_months[i] - base[i]
            scale = change / total if abs(total) > 1e-9 else 0.0
            items = [Contribution.model_construct(group="base", label="训练样本基准", months=round(float(base[i]), 2))]
            months = per_group[i] * scale
            order = np.argsort(-np.abs(months))
            for j in order[:TOP_CONTRIBUTIONS]:
                if abs(months[j]) >= 0.05:
                    g = self._group_ids[j]
                    items.append(Contribution.model_construct(group=g, label=group_label(g),
                                                              months=round(float(months[j]), 2)))
            rest = float(months[order[TOP_CONTRIBUTIONS:]].sum())
            if abs(rest) >= 0.05:
                items.append(Contribution.model_construct(group="other", label="其他因素", months=round(rest, 2)))
            out.append(items)
        return out

    def predict_case(self, case: Case, *, explain: bool = True) -> list[DefendantPrediction]:
        """One prediction per defendant, in order. Reads only what is known before judgment."""
        if not case.defendants:
            return []
        X, results, warnings = self.features(case)
        months, proba = self.predict_matrix(X)
        case_warnings = list(warnings)
        adjusted = enforce_role_consistency(case, months, self.extractor.resolve)
        explanations = self.contributions(X, months[:, 1]) if explain else [[] for _ in case.defendants]
        out: list[DefendantPrediction] = []
        for i, d in enumerate(case.defendants):
            probs = {f: float(p) for f, p in zip(FORMS, proba[i], strict=True)}
            form = SentenceForm(FORMS[int(np.argmax(proba[i]))])
            w = [m for m in case_warnings if m.startswith(f"{d.name}:")]
            if i in adjusted:
                w.append("从犯/胁从犯的幅度已调整为不高于同案主犯")
            for c in d.charges:
                if self.extractor.resolve(c.name)[0] is None:
                    w.append(f"罪名“{c.name}”不在规则库中：仅按学习模型预测，幅度可信度低")
            g = results[i]
            if g is not None:
                w.extend(x.message for x in g.warnings)
            if form in (SentenceForm.LIFE, SentenceForm.DEATH):
                rng = RangePrediction.model_construct(low_months=None, point_months=None, high_months=None,
                                                      confidence=self.confidence)
            else:
                lo, pt, hi = (round(float(v), 1) for v in months[i])
                rng = RangePrediction.model_construct(low_months=lo, point_months=pt, high_months=hi,
                                                      confidence=self.confidence)
            out.append(DefendantPrediction.model_construct(
                name=d.name, range=rng, form=form, form_probabilities=probs, contributions=explanations[i],
                guideline=g, warnings=w,
            ))
        return out


def cail_prediction(pred: DefendantPrediction) -> float:
    """The prediction as a CAIL term label: −2 death, −1 life, else the point in months."""
    if pred.form is SentenceForm.DEATH:
        return -2
    if pred.form is SentenceForm.LIFE:
        return -1
    return float(pred.range.point_months) if pred.range.point_months is not None else math.nan
