"""刑事责任年龄 (刑法第17条): the charges a defendant's age lets them answer for, and the case cut to them."""

from __future__ import annotations

import pytest

from sentencing.case import Case, Charge, Defendant, Injury, InjuryGrade, Measure, Quantities
from sentencing.liability import responsibility, triable


def _d(age: int | None, *charges: str, injury: InjuryGrade | None = None, deaths: float | None = None,
       unit: bool = False) -> Defendant:
    q = Quantities(injuries=[Injury(grade=injury)] if injury else [],
                   deaths=Measure(value=deaths) if deaths is not None else None)
    return Defendant(name="甲", age=age, is_unit=unit, charges=[Charge(name=c) for c in charges], quantities=q)


@pytest.mark.parametrize(("defendant", "kept", "excluded", "words"), [
    (_d(11, "故意杀人"), (), ("故意杀人",), ["不满十二周岁", "不应追究刑事责任"]),
    (_d(13, "盗窃"), (), ("盗窃",), ["第17条第3款", "对盗窃罪不负刑事责任"]),
    (_d(13, "故意杀人"), ("故意杀人",), (), ["最高人民检察院核准追诉"]),
    (_d(13, "故意伤害", injury=InjuryGrade.LIGHT_1), (), ("故意伤害",), ["不负刑事责任"]),
    (_d(15, "盗窃"), (), ("盗窃",), ["第17条第2款", "不应追究刑事责任"]),
    (_d(15, "抢劫", "盗窃"), ("抢劫",), ("盗窃",), ["对盗窃罪不负刑事责任"]),
    (_d(15, "故意伤害", injury=InjuryGrade.LIGHT_2), (), ("故意伤害",), ["不负刑事责任"]),
    (_d(15, "故意伤害"), ("故意伤害",), (), ["须致人重伤或者死亡"]),  # the harm unknown: a condition
    (_d(15, "贩卖毒品罪"), ("贩卖毒品罪",), (), ["仅对贩卖行为"]),
])
def test_what_the_age_leaves_of_the_charges(defendant: Defendant, kept: tuple, excluded: tuple,
                                            words: list[str]) -> None:
    r = responsibility(defendant)
    assert r is not None and r.answers_for == kept and r.excluded == excluded and r.none == (not kept)
    assert all(w in r.message for w in words), r.message


@pytest.mark.parametrize("defendant", [
    _d(16, "盗窃"), _d(None, "盗窃"), _d(15, "抢劫"), _d(15, "故意伤害", injury=InjuryGrade.SERIOUS_2),
    _d(15, "故意伤害", deaths=1), _d(14, "强奸", "放火"), _d(15, "盗窃", unit=True), _d(15),
])
def test_nothing_is_said_where_the_age_leaves_every_charge(defendant: Defendant) -> None:
    assert responsibility(defendant) is None


def test_the_case_is_cut_to_the_charges_the_age_answers_for() -> None:
    young, adult, child = _d(15, "抢劫", "盗窃"), _d(30, "抢劫", "盗窃"), _d(15, "盗窃")
    case = Case(id="t", defendants=[young, adult, child])
    cut = triable(case)
    assert [d.charge_names for d in cut.defendants] == [["抢劫"], ["抢劫", "盗窃"], ["盗窃"]]
    assert case.defendants[0].charge_names == ["抢劫", "盗窃"]  # the given case is left as it was
    plain = Case(id="t", defendants=[adult])
    assert triable(plain) is plain
