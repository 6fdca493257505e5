"""``guideline.statutory_tier``: the statutory tier of the whole calculation, without the whole calculation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentencing.case import Case, Charge, Defendant, Measure, Quantities
from sentencing.demo_corpus import generate_cases
from sentencing.guideline import calculate, statutory_tier
from sentencing.importers import iter_judge, iter_lawbench


def _expected(defendant: Defendant, case: Case) -> tuple[str, str] | None:
    statutory = calculate(defendant, case).statutory
    return (statutory.charge, statutory.tier_label) if statutory is not None else None


def _mismatches(cases: list[Case]) -> list[tuple[str, str]]:
    return [
        (c.id, d.name) for c in cases for d in c.defendants if statutory_tier(d, c) != _expected(d, c)
    ]


def test_equals_the_full_calculation_on_the_demo_corpus() -> None:
    cases = list(generate_cases(400, 3))
    assert sum(len(d.charges) > 1 for c in cases for d in c.defendants) > 0  # the several-charge path is covered
    assert _mismatches(cases) == []


def test_equals_the_full_calculation_on_real_judgments(shared_data: Path) -> None:
    cases = list(iter_judge(shared_data / "judge" / "judgments.jsonl"))
    cases += list(iter_lawbench(shared_data / "lawbench" / "term_prediction.jsonl"))
    assert len(cases) > 600
    assert _mismatches(cases) == []


@pytest.mark.parametrize(
    ("charges", "yuan", "province"),
    [
        (["盗窃"], 5_000, "JS"),
        (["盗窃"], 500_000, "JS"),
        (["盗窃罪", "盗窃"], 40_000, None),  # one charge written twice
        (["盗窃", "诈骗"], 80_000, "ZJ"),  # the most serious of several
        (["盗窃", "不在目录里的罪名"], 80_000, "ZJ"),
        (["不在目录里的罪名"], None, None),  # the catalogue's fallback tier
        ([], None, "JS"),  # no charge: no tier
    ],
)
def test_equals_the_calculation_on_edge_cases(charges: list[str], yuan: float | None, province: str | None) -> None:
    d = Defendant(
        name="张某",
        charges=[Charge(name=c) for c in charges],
        quantities=Quantities(amount_yuan=Measure(value=yuan) if yuan is not None else None),
    )
    case = Case(id="t", province=province, defendants=[d])
    assert statutory_tier(d, case) == _expected(d, case)
    assert statutory_tier(d) == _expected(d, Case(id="t"))


@pytest.mark.parametrize(
    ("charges", "yuan"),
    [
        ([("寻衅滋事", "纠集他人多次实施，严重破坏社会秩序")], None),
        ([("盗窃罪", "数额特别巨大或者有其他特别严重情节")], 5_000),  # above what the amount reaches
        ([("寻衅滋事", "没有这一档")], None),  # not a tier of the charge: the facts select it
        ([("盗窃", None), ("寻衅滋事", "纠集他人多次实施，严重破坏社会秩序")], 5_000),
    ],
)
def test_a_stated_tier_is_the_tier_both_ways(charges: list[tuple[str, str | None]], yuan: float | None) -> None:
    d = Defendant(
        name="张某",
        charges=[Charge(name=c, tier=t) for c, t in charges],
        quantities=Quantities(amount_yuan=Measure(value=yuan) if yuan is not None else None),
    )
    case = Case(id="t", province="JS", defendants=[d])
    assert statutory_tier(d, case) == _expected(d, case)
    stated = {c.removesuffix("罪"): t for c, t in charges if t}
    tier = statutory_tier(d, case)
    assert tier is not None and (tier[1] == stated[tier[0]] or "没有这一档" in stated.values())


def test_a_tier_no_fact_can_decide_is_named_and_one_the_facts_decide_is_not() -> None:
    from sentencing.charges import default_catalogue
    from sentencing.guideline import undetermined_tiers

    catalogue = default_catalogue()

    def open_tiers(charges: list[str], yuan: float | None = None) -> list[tuple[str, str]]:
        d = Defendant(name="甲", charges=[Charge(name=c) for c in charges],
                      quantities=Quantities(amount_yuan=Measure(value=yuan) if yuan else None))
        return undetermined_tiers(calculate(d, Case(id="t", defendants=[d])), catalogue)

    # 挪用资金: 9 million yuan selects 数额巨大 (法释〔2016〕9号: 400万元); 数额特别巨大 has no standard.
    ((charge, message),) = open_tiers(["挪用资金"], 9_434_000)
    assert charge == "挪用资金" and "“挪用本单位资金数额巨大的”" in message and "数额特别巨大" in message
    # 故意杀人 is priced in its first tier; 情节较轻 rests on 情节 the guideline does not read.
    ((_, message),) = open_tiers(["故意杀人"])
    assert "情节较轻" in message and "三年" in message
    # Tiers the amount decides (盗窃), in either direction, leave nothing open; several charges: one each.
    assert open_tiers(["盗窃"], 5000) == [] and open_tiers(["盗窃"], 500_000) == []
    assert [c for c, _ in open_tiers(["诈骗", "寻衅滋事"], 50_000)] == ["寻衅滋事"]
    # A charge the catalogue does not know has no tiers to speak of.
    assert open_tiers(["不存在的罪名"]) == []


def test_a_stated_tier_is_the_prosecutors_and_leaves_nothing_open() -> None:
    from sentencing.charges import default_catalogue
    from sentencing.guideline import undetermined_tiers

    catalogue = default_catalogue()
    plain = Defendant(name="甲", charges=[Charge(name="寻衅滋事")])
    stated = Defendant(name="甲", charges=[Charge(name="寻衅滋事", tier="纠集他人多次实施，严重破坏社会秩序")])
    wrong = Defendant(name="甲", charges=[Charge(name="寻衅滋事", tier="情节特别严重")])
    g_plain, g_stated, g_wrong = (calculate(d, Case(id="t", defendants=[d])) for d in (plain, stated, wrong))
    assert (g_stated.statutory.min_months, g_stated.statutory.max_months) == (60, 120)
    assert g_stated.point_months > g_plain.point_months
    assert "检察官认定" in g_stated.charge_results[0].steps[0].rule
    assert undetermined_tiers(g_plain, catalogue, plain) and not undetermined_tiers(g_stated, catalogue, stated)
    # A label the charge does not have: said so, the facts select the tier, and it stays open.
    assert [w.code for w in g_wrong.warnings] == ["unknown_tier"] and "情节特别严重" in g_wrong.warnings[0].message
    assert g_wrong.statutory.tier_label == g_plain.statutory.tier_label
    assert undetermined_tiers(g_wrong, catalogue, wrong)
