"""The plain-float serving path (RangePredictor._predict_rows, ConformalCalibration.calibrate_logs)
gives exactly the numbers of the array path (predict_matrix, to_months) that evaluation uses.

Exact equality, not closeness: a served prediction must not depend on which path computed it.
Two small real models (LightGBM → ONNX → onnxruntime): residual target drawn toward the guideline,
and log target not drawn, trained without life, death or non-custodial sentences so the severity
classifier is a constant with no ONNX graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentencing.demo_corpus import generate_cases
from sentencing.sentence import Sentence, SentenceForm, SentenceKind
from training.calibration import ConformalCalibration
from training.predictor import RangePredictor
from training.train import TrainConfig, train

_SEVERE = (SentenceKind.LIFE, SentenceKind.DEATH, SentenceKind.DEATH_SUSPENDED)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """Bitwise equal, NaN included (0.0 and -0.0 differ)."""
    assert a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.fixture(scope="module", params=["residual", "log-no-life"])
def predictor(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RangePredictor:
    cases = list(generate_cases(300, seed=11))
    if request.param == "residual":  # the demo corpus has almost no life or death sentences: add some
        for i in range(0, 60, 3):
            d = cases[i].defendants[0]
            kind = SentenceKind.LIFE if i % 2 else SentenceKind.DEATH
            cases[i].defendants[0] = d.model_copy(update={"sentence": Sentence(kind=kind)})
    else:
        cases = [c for c in cases
                 if all(d.sentence is None or (d.sentence.kind not in _SEVERE
                                               and d.sentence.form is not SentenceForm.NON_CUSTODIAL)
                        for d in c.defendants)]
    # both ways through draw_toward_guideline: a pull, and none
    config = TrainConfig(target="residual" if request.param == "residual" else "log", n_estimators=30,
                         guideline_weight=0.3 if request.param == "residual" else 0.0)
    out = train(cases, tmp_path_factory.mktemp(request.param) / "model", config=config)
    return RangePredictor.load(Path(out), guideline_cache_size=0)


def test_rows_equal_the_array_path(predictor: RangePredictor) -> None:
    cases = [c.before_judgment() for c in generate_cases(200, seed=12)]
    X = np.vstack([predictor.features(c)[0] for c in cases if c.defendants])
    X[::5, predictor._offset_column] = np.nan  # no guideline: the residual falls back to its constant
    months, proba = predictor.predict_matrix(X)
    for start in range(0, len(X), 3):  # request-sized batches, as served
        rows = X[start:start + 3]
        m, p, _ = predictor._predict_rows(rows)
        _same(m, months[start:start + 3])
        _same(np.array(p, dtype=np.float64), proba[start:start + 3])


def test_both_guideline_weight_paths_are_exercised(predictor: RangePredictor) -> None:
    assert predictor._guideline_weight == (0.3 if predictor._residual else 0.0)


def test_margins_by_charge_family_are_exercised(predictor: RangePredictor) -> None:
    margins = predictor.calibration.margins()
    assert len(margins) > 2 and len(set(margins.values())) > 1  # families with margins of their own


def test_constant_classifier_path_is_exercised(predictor: RangePredictor) -> None:
    slot, present = predictor._form_slots["form_severity"]
    if predictor._residual:
        assert slot is not None and len(present) == 4  # term, non-custodial, life, death
    else:
        assert slot is None and present == [0]  # only terms in training: P(term) = 1


def test_calibrate_logs_equals_to_months() -> None:
    rng = np.random.default_rng(3)
    logs = np.sort(rng.uniform(0.0, 6.0, size=(2000, 3)), axis=1)
    logs[:200] = logs[:200, [1]]  # zero-width ranges
    logs[200:300, 0] = 0.0
    for margin in (0.4, 0.0, -0.3, -5.0):  # a negative margin narrows, and can close, a range
        cal = ConformalCalibration(confidence=0.8, scores=[margin] * 20)
        assert cal.margin() == margin
        expected = cal.to_months(logs)
        rows = np.array([cal.calibrate_logs(*row, margin) for row in logs.tolist()])
        _same(np.expm1(rows), expected)
