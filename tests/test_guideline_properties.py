"""Properties of the guideline calculator over generated defendants: never a crash, always consistent."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentencing.case import (
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    Defendant,
    Injury,
    InjuryGrade,
    Measure,
    Quantities,
    Role,
)
from sentencing.charges import default_catalogue
from sentencing.guideline import calculate
from sentencing.regions import PROVINCES
from sentencing.sentence import SentenceForm, SentenceKind

CATALOGUE = default_catalogue()
NAMES = [*sorted({s.name for s in CATALOGUE.charges()}), "外星人入侵", "盗窃罪", "贩卖毒品"]
DRUGS = ["海洛因", "甲基苯丙胺", "氯胺酮", "神秘粉末"]
GRADES = list(InjuryGrade)
measure = st.floats(min_value=0.01, max_value=1e8, allow_nan=False).map(lambda v: Measure(value=v))

defendants = st.builds(
    Defendant,
    name=st.just("某"),
    charges=st.lists(st.sampled_from(NAMES).map(lambda n: Charge(name=n)), max_size=4),
    role=st.sampled_from(list(Role)),
    circumstances=st.lists(st.sampled_from(list(CircumstanceCode)).map(lambda c: Circumstance(code=c)), max_size=6),
    age=st.none() | st.integers(min_value=12, max_value=95),
    quantities=st.builds(
        Quantities,
        amount_yuan=st.none() | measure,
        drug_grams=st.dictionaries(st.sampled_from(DRUGS), measure, max_size=2),
        injuries=st.lists(st.builds(Injury, grade=st.sampled_from(GRADES), count=st.integers(1, 5)), max_size=3),
        occurrences=st.none() | st.integers(1, 50).map(lambda v: Measure(value=v)),
        deaths=st.none() | st.integers(1, 10).map(lambda v: Measure(value=v)),
        blood_alcohol_mg_per_100ml=st.none() | st.integers(20, 500).map(lambda v: Measure(value=v)),
    ),
)
provinces = st.none() | st.sampled_from([p.code for p in PROVINCES])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(defendants, provinces)
def test_any_defendant_gets_a_consistent_result(d: Defendant, province: str | None) -> None:
    r = calculate(d, Case(id="p", province=province))
    assert r.ruleset_version == CATALOGUE.version
    if not d.charges:
        assert r.point_months is None and "no_charges" in {w.code for w in r.warnings}
        return
    assert r.charge_results
    if r.kind is SentenceKind.LIFE:
        assert r.point_months is None and r.form is SentenceForm.LIFE
        return
    assert r.low_months is not None and r.point_months is not None and r.high_months is not None
    assert 1 <= r.low_months <= r.point_months <= r.high_months <= 300
    assert r.kind in (SentenceKind.FIXED_TERM, SentenceKind.DETENTION)
    if r.kind is SentenceKind.DETENTION:
        assert r.point_months <= 12  # 拘役: up to 6 months, 1 year combined (art. 69)
    if r.probation_eligible:
        assert r.point_months <= 36.5
        assert all(s.circumstance is not CircumstanceCode.RECIDIVIST for s in r.steps)
    if r.form is SentenceForm.PROBATION:
        assert r.probation_eligible
    known = [n for n, spec in CATALOGUE.resolve_all(d.charge_names) if spec is None]
    assert bool(known) == any(w.code == "unknown_charge" for w in r.warnings)
    assert all(s.basis for s in r.steps)
    assert r.band >= 0.2
