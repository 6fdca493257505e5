"""The fast serving path of issue #4 gives the same numbers as the straightforward one.

Guideline results from the predictor's cache equal fresh calculations; leaf-table explanations
equal the decision-path walk of training.explain; the native leaf lookup equals LightGBM's own
``pred_leaf``; the lean pydantic construction equals ``model_construct``; predictions are the
same with the cache on or off, and from several threads at once. One small real model (LightGBM,
ONNX, onnxruntime) is trained for the module.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from features.extract import GuidelineCache, guideline_key, guideline_results
from sentencing.case import (
    Aggravation,
    AggravationCode,
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    Court,
    CourtLevel,
    Defendant,
    Evidence,
    Injury,
    InjuryGrade,
    Measure,
    Quantities,
    Role,
    trusted,
)
from sentencing.demo_corpus import generate_cases
from training.explain import PathExplainer
from training.native_booster import LeafIndex, NativeBooster
from training.predictor import (
    CONTRIBUTIONS,
    Contribution,
    DefendantPrediction,
    LeafContributions,
    ModelLoadError,
    RangePrediction,
    RangePredictor,
    comparable_pairs,
)
from training.train import TrainConfig, train


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return [c.before_judgment() for c in generate_cases(400, seed=4)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, cases: list[Case]) -> Path:
    out = tmp_path_factory.mktemp("fast") / "model"
    # a fixed pull toward the guideline, so that its credit is exercised whatever weight the data would choose
    return train(generate_cases(400, seed=5), out, config=TrainConfig(target="residual", guideline_weight=0.4))


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> RangePredictor:
    return RangePredictor.load(model_dir, guideline_cache_size=64)


def _gang(*, unknown_charge: bool = False) -> Case:
    roles = (Role.PRINCIPAL, Role.ACCESSORY, Role.COERCED)
    return Case(
        id="gang", province="ZJ",
        court=Court(name="浙江省杭州市西湖区人民法院", province="ZJ", level=CourtLevel.BASIC),
        defendants=[
            Defendant(
                name=f"被告人{i}", role=role, age=25 + i,
                charges=[Charge(name="某种未知罪名" if unknown_charge and i == 2 else "盗窃")],
                circumstances=[Circumstance(code=CircumstanceCode.CONFESSION)],
                quantities=Quantities(amount_yuan=Measure(value=30_000 / (i + 1))),
            )
            for i, role in enumerate(roles)
        ],
    )


def _json(preds: list[DefendantPrediction]) -> str:
    return json.dumps([p.model_dump(mode="json") for p in preds], ensure_ascii=False)


# ---------------------------------------------------------------------- guideline cache

def test_guideline_cache_returns_the_fresh_calculation(predictor: RangePredictor, cases: list[Case]) -> None:
    cache = GuidelineCache(predictor.catalogue, maxsize=1000)
    sample = [*cases[:150], _gang(unknown_charge=True)]
    for _ in range(2):  # first pass fills, second pass hits
        for case in sample:
            fresh, fresh_warnings = guideline_results(case, predictor.catalogue)
            cached, cached_warnings = cache.results(case)
            assert cached_warnings == fresh_warnings
            assert [r.model_dump() if r else None for r in cached] == [r.model_dump() if r else None for r in fresh]
    n = sum(len(c.defendants) for c in sample)
    assert cache.misses <= n and cache.hits >= n


def test_guideline_cache_is_bounded_and_can_be_off(predictor: RangePredictor) -> None:
    cache = GuidelineCache(predictor.catalogue, maxsize=2)
    case = _gang()
    cache.results(case)
    assert len(cache._entries) == 2 and cache.misses == 3
    assert GuidelineCache(predictor.catalogue, maxsize=0).results(case)[0][0] is not None
    with pytest.raises(ValueError, match="cache size"):
        GuidelineCache(predictor.catalogue, maxsize=-1)


def test_guideline_key_covers_every_input_field() -> None:
    """Fails when Defendant or Quantities gain a field: decide whether guideline_key must read it."""
    read = {"name", "is_unit", "charges", "role", "age", "circumstances", "aggravations", "quantities"}
    # pregnant: the guideline does not price it; the law's no-death rule is applied after the model
    # (training.predictor.exclude_death), never through a cached guideline result.
    ignored = {"role_evidence", "pregnant", "sentence", "sentence_evidence", "charge_sentences"}
    assert set(Defendant.model_fields) == read | ignored
    assert set(Quantities.model_fields) == {"amount_yuan", "drug_grams", "injuries", "occurrences", "deaths",
                                            "blood_alcohol_mg_per_100ml"}
    assert set(Measure.model_fields) == {"value", "evidence"}
    assert set(Injury.model_fields) == {"grade", "count", "evidence"}
    assert set(Circumstance.model_fields) == {"code", "evidence"}
    assert set(Aggravation.model_fields) == {"code", "evidence"}
    assert set(Charge.model_fields) == {"name", "evidence", "tier", "tier_evidence", "quantities"}


def test_guideline_key_changes_with_each_input() -> None:
    base = Defendant(name="甲", charges=[Charge(name="盗窃")], age=30)
    edits = [
        {"name": "乙"}, {"is_unit": True}, {"charges": [Charge(name="诈骗")]}, {"role": Role.ACCESSORY}, {"age": 17},
        {"charges": [Charge(name="盗窃", tier="数额巨大")]},
        {"charges": [Charge(name="盗窃", tier="数额巨大", tier_evidence=Evidence.of("facts", 0, 4, "数额巨大"))]},
        {"charges": [Charge(name="盗窃", quantities=Quantities())]},
        {"charges": [Charge(name="盗窃", quantities=Quantities(amount_yuan=Measure(value=1.0)))]},
        {"circumstances": [Circumstance(code=CircumstanceCode.SURRENDER)]},
        {"aggravations": [Aggravation(code=AggravationCode.HOME_INVASION)]},
        {"quantities": Quantities(amount_yuan=Measure(value=1.0))},
        {"quantities": Quantities(drug_grams={"海洛因": Measure(value=1.0)})},
        {"quantities": Quantities(injuries=[Injury(grade=InjuryGrade.LIGHT_1)])},
        {"quantities": Quantities(injuries=[Injury(grade=InjuryGrade.LIGHT_1, count=2)])},
        {"quantities": Quantities(occurrences=Measure(value=3))},
        {"quantities": Quantities(deaths=Measure(value=1))},
        {"quantities": Quantities(blood_alcohol_mg_per_100ml=Measure(value=90))},
    ]
    keys = {guideline_key(base, "JS"), guideline_key(base, "ZJ"), guideline_key(base, None)}
    keys |= {guideline_key(base.model_copy(update=e), "JS") for e in edits}
    assert len(keys) == 3 + len(edits)


# ---------------------------------------------------------------------- explanations

def test_leaf_contributions_equal_the_path_walk(predictor: RangePredictor, cases: list[Case]) -> None:
    X = np.vstack([predictor.features(c)[0] for c in cases[:200] if c.defendants])
    X[::7, 3] = np.nan  # missing values take the default direction in both
    booster = predictor.lightgbm_booster()
    walk = PathExplainer(booster)
    full = walk.contributions(X)
    groups = np.zeros((X.shape[1], len(predictor._group_ids)))
    groups[np.arange(X.shape[1]), [predictor._group_ids.index(g) for g in predictor.spec.groups]] = 1.0
    fast = predictor._explainer
    np.testing.assert_allclose(fast.grouped(X), full[:, :-1] @ groups, rtol=0, atol=1e-9)
    assert fast.bias == full[0, -1]
    # Credits plus the bias are the booster's raw prediction.
    raw = booster.predict(X, raw_score=True, num_threads=1)
    np.testing.assert_allclose(fast.grouped(X).sum(axis=1) + fast.bias, raw, rtol=0, atol=1e-9)


def test_served_credits_are_the_leaf_table_summed_in_onnx(predictor: RangePredictor, cases: list[Case]) -> None:
    X = np.vstack([predictor.features(c)[0] for c in cases[:200] if c.defendants])
    X[::7, 3] = np.nan  # missing values take the default direction in both
    served = predictor.onnx.predict(X.astype(np.float32))[CONTRIBUTIONS]
    reference = predictor._explainer.grouped(X)
    assert np.abs(reference).max() > 0.1  # the credits are not all zero
    np.testing.assert_allclose(served, reference, rtol=0, atol=1e-5)
    # what predict_case shows: the same credits as the separate call, scaled to the adjusted point
    case = next(c for c in cases if len(c.defendants) > 1)
    X, _, _ = predictor.features(case)
    months, _, credits = predictor._predict_rows(X)
    credits = np.array(credits)
    onnx_credits = predictor.onnx.predict(X.astype(np.float32))[CONTRIBUTIONS]
    guideline = predictor._guideline_group
    others = np.arange(credits.shape[1]) != guideline
    np.testing.assert_array_equal(credits[:, others], onnx_credits[:, others])
    # the guideline's credit also holds its pull (draw_toward_guideline): with it the credits add up
    # to the served point (ln(1 + months), before the residual's offset is credited in _explain_rows)
    assert predictor._guideline_weight == 0.4
    pull = credits[:, guideline] - onnx_credits[:, guideline]
    assert np.abs(pull).max() > 0.01
    offset = np.where(np.isfinite(X[:, predictor._offset_column]), X[:, predictor._offset_column],
                      predictor._offset_fallback)
    out = predictor.onnx.predict(X.astype(np.float32))
    raw = np.column_stack([out["term_low"], out["term_point"], out["term_high"]]) + predictor._init
    ordered = (raw[:, 0] <= raw[:, 1]) & (raw[:, 1] <= raw[:, 2])  # crossed quantiles are sorted: another point
    assert ordered.any()
    np.testing.assert_allclose((credits.sum(axis=1) + predictor._explainer.bias + predictor._init[1] + offset)[ordered],
                               np.log1p(months[:, 1])[ordered], rtol=0, atol=1e-5)
    shown = predictor.contributions(X, months[:, 1])
    for p, expected in zip(predictor.predict_case(case), shown, strict=True):
        assert p.contributions == expected
        assert abs(sum(c.months for c in expected) - p.range.point_months) < 0.06 * len(expected)


def test_the_credit_graph_needs_the_point_models_own_trees(predictor: RangePredictor, model_dir: Path,
                                                           tmp_path: Path) -> None:
    low = (model_dir / predictor._models["term_low"]["onnx"]).read_bytes()
    with pytest.raises(ValueError, match=r"tree 0, node \d+: "):
        predictor._explainer.onnx_part(low)
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    (broken / predictor._models["term_point"]["onnx"]).write_bytes(low)
    with pytest.raises(ModelLoadError, match=r"native point model unusable for explanations.*tree 0, node"):
        RangePredictor.load(broken)


def test_leaf_index_equals_lightgbm_pred_leaf(predictor: RangePredictor, cases: list[Case]) -> None:
    X = np.vstack([predictor.features(c)[0] for c in cases[:50] if c.defendants])
    booster = predictor.lightgbm_booster()
    expected = booster.predict(X, pred_leaf=True, num_threads=1)
    native = NativeBooster(predictor.model_dir / predictor._models["term_point"]["native"])
    assert (native.n_trees, native.n_features) == (booster.num_trees(), booster.num_feature())
    leaves = LeafIndex(native, native.n_trees)
    np.testing.assert_array_equal(leaves(X), expected)
    np.testing.assert_array_equal(leaves(X[::-1].copy(order="F")), expected[::-1])  # any memory layout
    with pytest.raises(ValueError, match=r"X: expected \(n, "):
        leaves(X[:, :-1])


def test_leaf_contributions_reject_multiclass(predictor: RangePredictor) -> None:
    entry = predictor._models["form_custody"]
    if "native" not in entry:
        pytest.skip("custody classifier is a constant in this model")
    booster = NativeBooster(predictor.model_dir / entry["native"])
    with pytest.raises(ValueError, match="single-output"):
        LeafContributions(booster, np.zeros(booster.n_features, dtype=np.int64), 1)


def test_trusted_construction_equals_validation() -> None:
    c = trusted(Contribution, {"group": "amount", "label": "犯罪数额", "months": -1.25})
    assert c == Contribution.model_construct(group="amount", label="犯罪数额", months=-1.25)
    assert c.model_fields_set == {"group", "label", "months"}
    r = trusted(RangePrediction, {"low_months": 1.0, "point_months": 2.0, "high_months": 3.0, "confidence": 0.8})
    assert r.model_dump_json() == RangePrediction(low_months=1.0, point_months=2.0, high_months=3.0,
                                                  confidence=0.8).model_dump_json()
    e = Evidence.of("facts", 3, 9, "主动投案自首")
    validated = Evidence(source="facts", start=3, end=9, text="主动投案自首")
    assert e == validated and hash(e) == hash(validated) and e.model_fields_set == validated.model_fields_set
    assert e.model_dump_json() == validated.model_dump_json()


# ---------------------------------------------------------------------- whole predictions

def test_predictions_are_the_same_with_and_without_the_cache(model_dir: Path, predictor: RangePredictor,
                                                            cases: list[Case]) -> None:
    uncached = RangePredictor.load(model_dir, guideline_cache_size=0)
    sample = [*cases[:120], _gang(), _gang(unknown_charge=True)]
    for case in sample + sample:
        assert _json(predictor.predict_case(case)) == _json(uncached.predict_case(case))
        assert _json(predictor.predict_case(case, explain=False)) == _json(uncached.predict_case(case, explain=False))
    assert predictor.guidelines.hits > 0


def test_concurrent_predictions_equal_sequential_ones(predictor: RangePredictor, cases: list[Case]) -> None:
    sample = [c for c in cases if c.defendants][:60]
    expected = [_json(predictor.predict_case(c)) for c in sample]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda c: _json(predictor.predict_case(c)), sample * 3))
    assert got == expected * 3


def test_comparable_pairs_follow_roles_charges_and_aggravation(predictor: RangePredictor) -> None:
    case = _gang()
    assert comparable_pairs(case, predictor.extractor.resolve) == [(1, 0), (2, 0)]
    case.defendants[1].circumstances.append(Circumstance(code=CircumstanceCode.RECIDIVIST))
    case.defendants[2].charges = [Charge(name="诈骗")]
    assert comparable_pairs(case, predictor.extractor.resolve) == []
