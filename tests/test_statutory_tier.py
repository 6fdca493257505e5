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
