"""Feature extraction: layout, explicit missing values, no label leakage, joint-crime context."""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.extract import FeatureExtractor, guideline_results
from features.spec import FEATURE_SPEC_VERSION, FeatureSpec, build_spec
from sentencing.case import (
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    Court,
    CourtLevel,
    Defendant,
    Injury,
    InjuryGrade,
    Measure,
    Quantities,
    Role,
)
from sentencing.charges import default_catalogue
from sentencing.sentence import Sentence, SentenceKind


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    catalogue = default_catalogue()
    return FeatureExtractor(build_spec(catalogue), catalogue)


def _theft_case(*, sentences: bool = True) -> Case:
    def d(name: str, role: Role, amount: float, codes: list[CircumstanceCode], months: int) -> Defendant:
        return Defendant(
            name=name, charges=[Charge(name="盗窃罪")], role=role,
            circumstances=[Circumstance(code=c) for c in codes],
            quantities=Quantities(amount_yuan=Measure(value=amount)), age=30,
            sentence=Sentence(kind=SentenceKind.FIXED_TERM, months=months) if sentences else None,
        )

    return Case(
        id="t1", source="judge", province="JS",
        court=Court(name="江苏省南京市玄武区人民法院", province="JS", level=CourtLevel.BASIC),
        facts="被告人甲、乙共同盗窃……", judgment="被告人甲犯盗窃罪，判处有期徒刑二年。",
        defendants=[
            d("甲", Role.PRINCIPAL, 60_000, [CircumstanceCode.CONFESSION], 24),
            d("乙", Role.ACCESSORY, 20_000, [CircumstanceCode.CONFESSION], 10),
            d("丙", Role.ACCESSORY, 20_000, [CircumstanceCode.SURRENDER, CircumstanceCode.RECIDIVIST], 12),
        ],
    )


def _row(extractor: FeatureExtractor, case: Case) -> np.ndarray:
    results, _ = guideline_results(case, extractor.catalogue)
    return extractor.case_matrix(case, results)


def test_spec_layout_is_versioned_and_round_trips() -> None:
    spec = build_spec(default_catalogue())
    assert spec.version == FEATURE_SPEC_VERSION
    assert len(spec.names) == len(set(spec.names)) == len(spec.groups) == len(spec.monotone)
    again = FeatureSpec.model_validate_json(spec.model_dump_json())
    assert again.names == spec.names
    again.check_compatible()
    tampered = spec.model_copy(update={"names": spec.names[::-1]})
    with pytest.raises(ValueError, match="differ"):
        tampered.check_compatible()
    # The law fixes these directions (DOMAIN.md §2).
    assert spec.monotone[spec.index("amount_log_yuan")] == 1
    assert spec.monotone[spec.index("circ_surrender")] == -1
    assert spec.monotone[spec.index("circ_recidivist")] == 1
    assert spec.monotone[spec.index("role_rank")] == 1


def test_values_and_joint_crime_context(extractor: FeatureExtractor) -> None:
    case = _theft_case()
    X = _row(extractor, case)
    spec = extractor.spec
    col = spec.index
    assert X.shape == (3, spec.n_features)
    assert X[0, col("amount_log_yuan")] == pytest.approx(math.log1p(60_000))
    assert X[0, col("codefendants_amount_share")] == pytest.approx(0.6)
    assert X[1, col("codefendants_count")] == 2
    assert X[0, col("role_rank")] > X[1, col("role_rank")]
    # 乙 has exactly the principal's circumstances, 丙 does not; the principal has no other principal.
    assert X[1, col("codefendants_principal_same_circumstances")] == 1
    assert X[2, col("codefendants_principal_same_circumstances")] == 0
    assert math.isnan(X[0, col("codefendants_principal_same_circumstances")])
    assert X[2, col("circ_surrender")] == 1 and X[2, col("circ_recidivist")] == 1
    assert X[0, col("charge_盗窃")] == 1 and X[0, col("charge_其他")] == 0
    assert X[0, col("charge_family_property")] == 1
    assert X[0, col("region_JS")] == 1 and X[0, col("region_ZJ")] == 0
    assert X[0, col("court_basic")] == 1
    assert X[0, col("guideline_known")] == 1
    assert np.isfinite(X[0, col("guideline_point")])


def test_missing_values_are_nan_not_zero(extractor: FeatureExtractor) -> None:
    case = Case(id="m", defendants=[Defendant(name="丁", charges=[Charge(name="某种没有的罪")])])
    X = _row(extractor, case)
    col = extractor.spec.index
    assert X[0, col("amount_known")] == 0 and math.isnan(X[0, col("amount_log_yuan")])
    assert X[0, col("age_known")] == 0 and math.isnan(X[0, col("age")])
    assert X[0, col("injury_known")] == 0 and math.isnan(X[0, col("injury_max_rank")])
    assert X[0, col("region_known")] == 0
    assert math.isnan(X[0, col("court_basic")])
    assert X[0, col("charge_其他")] == 1 and X[0, col("charge_family_其他")] == 1


def test_injury_and_drugs(extractor: FeatureExtractor) -> None:
    case = Case(id="i", defendants=[Defendant(
        name="戊", charges=[Charge(name="故意伤害")],
        quantities=Quantities(injuries=[Injury(grade=InjuryGrade.LIGHT_2), Injury(grade=InjuryGrade.SERIOUS_2)],
                              drug_grams={"冰毒": Measure(value=12.0)}),
    )])
    X = _row(extractor, case)
    col = extractor.spec.index
    assert X[0, col("injury_max_rank")] == InjuryGrade.SERIOUS_2.rank
    assert X[0, col("injury_count")] == 2
    assert X[0, col("drugs_log_grams_甲基苯丙胺")] == pytest.approx(math.log1p(12.0))


def test_outcome_never_reaches_the_features(extractor: FeatureExtractor) -> None:
    with_outcome = _row(extractor, _theft_case(sentences=True))
    blind = _row(extractor, _theft_case(sentences=True).before_judgment())
    without = _row(extractor, _theft_case(sentences=False))
    np.testing.assert_array_equal(np.nan_to_num(with_outcome, nan=-9), np.nan_to_num(blind, nan=-9))
    np.testing.assert_array_equal(np.nan_to_num(with_outcome, nan=-9), np.nan_to_num(without, nan=-9))


def test_catalogue_version_must_match_spec() -> None:
    catalogue = default_catalogue()
    spec = build_spec(catalogue).model_copy(update={"ruleset_version": "other"})
    with pytest.raises(ValueError, match="rule set"):
        FeatureExtractor(spec, catalogue)


def test_guideline_columns_are_remembered_for_the_latest_results_only() -> None:
    """A served result's columns are memoised by identity, for the last _GUIDELINE_MEMO_SIZE results: the
    oldest goes when a new one comes (the memo had been cleared whole, freeing 256 results in one request),
    and a result no longer remembered gives the same row again."""
    from features.extract import _GUIDELINE_MEMO_SIZE

    catalogue = default_catalogue()
    extractor = FeatureExtractor(build_spec(catalogue), catalogue)
    case = _theft_case(sentences=False)
    first_results, _ = guideline_results(case, catalogue)
    first = extractor.case_matrix(case, first_results)
    batches = [guideline_results(case, catalogue)[0] for _ in range(_GUIDELINE_MEMO_SIZE // 3 + 2)]
    for results in batches:
        np.testing.assert_array_equal(extractor.case_matrix(case, results), first)
    memo = extractor._guideline_memo
    assert len(memo) == _GUIDELINE_MEMO_SIZE
    assert all(id(g) in memo for results in batches[-(_GUIDELINE_MEMO_SIZE // 3):] for g in results)
    assert not any(id(g) in memo and memo[id(g)][0] is g for g in first_results)
    np.testing.assert_array_equal(extractor.case_matrix(case, first_results), first)
