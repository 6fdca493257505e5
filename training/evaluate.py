"""Scoring a model on cases it never saw, per defendant, against baselines measured in the same run.

The model sees ``case.before_judgment()`` only; the outcome is read from the original case. The
figures are those of DOMAIN.md §5 (sentencing.metrics): CAIL log score, MAE in months, coverage and
width of the range, custody accuracy.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentencing.case import Case
from sentencing.liability import triable
from sentencing.metrics import cail_score, interval_coverage, mae_months, mean_width, within_share
from sentencing.sentence import CAIL_DEATH, CAIL_LIFE, SentenceForm
from training.dataset import CUSTODIAL_FORMS, form_label, guideline_outcome
from training.models import FORMS, TERM_UNKNOWN_FORM
from training.predictor import RangePredictor, apply_lawful_outcomes, enforce_role_consistency, role_violations

CUSTODIAL = CUSTODIAL_FORMS


@dataclass
class Record:
    """One held-out defendant: truth, the model's prediction, and what the baselines need."""

    case_id: str
    name: str
    true_months: int
    true_form: str
    pred_months: float
    low: float
    point: float
    high: float
    form: str
    p_custodial: float
    guideline_low: float
    guideline_point: float
    guideline_high: float
    guideline_months: float
    guideline_custodial: bool | None
    charge: str
    family: str
    province: str
    n_defendants: int
    source: str


def predict_records(predictor: RangePredictor, cases: Iterable[Case]) -> tuple[list[Record], dict[str, int]]:
    """Held-out records of every sentenced defendant, and role-consistency counts before enforcement."""
    records: list[Record] = []
    stats = {"cases": 0, "multi_defendant_cases": 0, "role_pairs_violating": 0, "defendants_adjusted": 0}
    for case in cases:
        if not any(d.sentence is not None for d in case.defendants):
            continue
        blind = triable(case.before_judgment(), predictor.catalogue)  # as predict_case: 刑法第17条
        X, results, _ = predictor.features(blind)
        months, proba = predictor.predict_matrix(X)
        apply_lawful_outcomes(blind, months, proba, results, predictor.catalogue)
        stats["cases"] += 1
        stats["multi_defendant_cases"] += len(case.defendants) > 1
        stats["role_pairs_violating"] += len(role_violations(blind, months, predictor.extractor.resolve))
        stats["defendants_adjusted"] += len(enforce_role_consistency(blind, months, predictor.extractor.resolve))
        province = case.known_province or "未知"
        for i, d in enumerate(case.defendants):
            if d.sentence is None:
                continue
            form = FORMS[int(np.argmax(proba[i]))]
            lo, pt, hi = (float(v) for v in months[i])
            if form in (SentenceForm.LIFE.value, SentenceForm.DEATH.value):
                pred = float(CAIL_DEATH if form == SentenceForm.DEATH.value else CAIL_LIFE)
                lo = pt = hi = math.nan
            else:
                pred = pt
            g_lo, g_pt, g_hi, g_months, g_cust = guideline_outcome(results[i])
            first = d.charges[0].name if d.charges else ""
            name, family = predictor.extractor.resolve(first) if first else (None, None)
            true = d.sentence.term_months
            records.append(Record(
                case_id=case.id, name=d.name, true_months=true, true_form=form_label(case, d.sentence.form, true),
                pred_months=pred, low=lo, point=pt, high=hi, form=form,
                p_custodial=float(sum(p for f, p in zip(FORMS, proba[i], strict=True) if f in CUSTODIAL)),
                guideline_low=g_lo, guideline_point=g_pt, guideline_high=g_hi, guideline_months=g_months,
                guideline_custodial=g_cust, charge=name or "其他", family=family or "other", province=province,
                n_defendants=len(case.defendants), source=case.source,
            ))
    return records, stats


def _nan_to_zero(values: Sequence[float]) -> list[float]:
    """A method that gives no number for a defendant scores as predicting 0 months (no silent skip)."""
    return [0.0 if not math.isfinite(v) else v for v in values]


def term_metrics(true: Sequence[int], pred: Sequence[float], low: Sequence[float] | None = None,
                 high: Sequence[float] | None = None) -> dict[str, float]:
    true = [int(t) for t in true]
    pred = _nan_to_zero(pred)
    out = {
        "n_defendants": len(true),
        "cail_score": round(cail_score(true, pred), 2),
        "mae_months": round(mae_months(true, pred), 2),
        "within_25pct": round(within_share(true, pred), 3),
    }
    if low is not None and high is not None:
        ranged = [(t, lo, hi) for t, lo, hi in zip(true, low, high, strict=True) if t >= 0]
        lows = [lo if math.isfinite(lo) else math.nan for _, lo, _ in ranged]
        highs = [hi if math.isfinite(hi) else math.nan for _, _, hi in ranged]
        out["coverage"] = round(interval_coverage([t for t, _, _ in ranged], lows, highs), 3)
        finite = [(lo, hi) for lo, hi in zip(lows, highs, strict=True) if math.isfinite(lo) and math.isfinite(hi)]
        out["mean_width_months"] = round(mean_width([a for a, _ in finite], [b for _, b in finite]), 2)
    return out


def custody_accuracy(records: Sequence[Record], predicted_custodial: Callable[[Record], bool | None]) -> float:
    rows = [r for r in records if r.true_form != TERM_UNKNOWN_FORM]
    hits = [predicted_custodial(r) == (r.true_form in CUSTODIAL) for r in rows if predicted_custodial(r) is not None]
    return round(sum(hits) / len(rows), 3) if rows else math.nan


def summarize(records: Sequence[Record], charge_medians: dict[str, float] | None = None,
              extra_baselines: dict[str, Sequence[float]] | None = None) -> dict[str, Any]:
    """The ``sentencing evaluate --json`` object for a set of held-out records."""
    true = [r.true_months for r in records]
    model = term_metrics(true, [r.pred_months for r in records], [r.low for r in records],
                         [r.high for r in records])
    out: dict[str, Any] = {
        **model,
        "custody_accuracy": custody_accuracy(records, lambda r: r.p_custodial > 0.5),
    }
    baselines: dict[str, Any] = {
        "guideline": {
            **term_metrics(true, [r.guideline_months for r in records], [r.guideline_low for r in records],
                           [r.guideline_high for r in records]),
            "custody_accuracy": custody_accuracy(records, lambda r: r.guideline_custodial),
        },
    }
    if charge_medians is not None:
        fallback = charge_medians.get("*", 0.0)
        baselines["charge_median"] = term_metrics(true, [charge_medians.get(r.charge, fallback) for r in records])
    for name, preds in (extra_baselines or {}).items():
        baselines[name] = term_metrics(true, preds)
    out["baselines"] = baselines
    return out


def breakdown(records: Sequence[Record], key: Callable[[Record], str], min_n: int = 1) -> dict[str, dict[str, float]]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[key(r)].append(r)
    out = {}
    for k, rows in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        if len(rows) >= min_n:
            m = term_metrics([r.true_months for r in rows], [r.pred_months for r in rows], [r.low for r in rows],
                             [r.high for r in rows])
            m["guideline_cail_score"] = term_metrics([r.true_months for r in rows],
                                                     [r.guideline_months for r in rows])["cail_score"]
            out[k] = m
    return out


def evaluate(predictor: RangePredictor, cases: Iterable[Case]) -> tuple[dict[str, Any], list[Record]]:
    records, stats = predict_records(predictor, cases)
    medians = json.loads((predictor.model_dir / "baselines.json").read_text(encoding="utf-8"))["charge_median_months"]
    out = summarize(records, medians)
    out["by_family"] = breakdown(records, lambda r: r.family)
    out["by_defendants"] = breakdown(records, lambda r: "1" if r.n_defendants == 1 else "2+")
    out["role_consistency"] = stats
    out["model_version"] = predictor.version
    return out, records


def write_records(records: Sequence[Record], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
