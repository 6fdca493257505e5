"""Whether a defendant of their age answers for a charge at all (刑事责任年龄, 刑法第17条).

- 已满十六周岁: every crime.
- 已满十四周岁不满十六周岁: only 故意杀人、故意伤害致人重伤或者死亡、强奸、抢劫、贩卖毒品、放火、爆炸、
  投放危险物质 (第17条第2款).
- 已满十二周岁不满十四周岁: only 故意杀人 or 故意伤害 causing death, or serious injury and grave
  disability by especially cruel means, 情节恶劣, and only with the 最高人民检察院's approval to
  prosecute (第17条第3款).
- 不满十二周岁: none.

A recommendation for a charge the defendant does not answer for is wrong in kind, not degree: a
13-year-old's theft was given probation. The age is the one at the time of the crime
(``Defendant.age``); unknown, nothing is said. Read from the charges and quantities only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentencing.case import Case, Defendant, InjuryGrade
from sentencing.charges import ChargeCatalogue, default_catalogue

FULL_AGE = 16
PARTIAL_AGE = 14
GRAVE_AGE = 12
_PARTIAL = ("故意杀人", "故意伤害", "强奸", "抢劫", "走私、贩卖、运输、制造毒品", "放火", "爆炸", "投放危险物质")
_GRAVE = ("故意杀人", "故意伤害")
_PARTIAL_RULE = ("已满十四周岁不满十六周岁的人，仅对故意杀人、故意伤害致人重伤或者死亡、强奸、抢劫、贩卖毒品、"
                 "放火、爆炸、投放危险物质负刑事责任（刑法第17条第2款）")
_GRAVE_RULE = ("已满十二周岁不满十四周岁的人，仅对故意杀人、故意伤害致人死亡或者以特别残忍手段致人重伤造成严重残疾、"
               "情节恶劣，经最高人民检察院核准追诉的负刑事责任（刑法第17条第3款）")
_CHILD_RULE = "不满十二周岁的人不负刑事责任（刑法第17条）"


@dataclass(frozen=True)
class Responsibility:
    """What the defendant's age leaves of their charges."""

    answers_for: tuple[str, ...]
    """The charges (as given) the defendant may answer for; empty: none, so no punishment at all."""
    excluded: tuple[str, ...]
    """The charges (as given) the defendant does not answer for at this age."""
    message: str
    """The rule and what it leaves, in Chinese, with any condition the charges kept depend on."""

    @property
    def none(self) -> bool:
        return not self.answers_for


def responsibility(defendant: Defendant, catalogue: ChargeCatalogue | None = None) -> Responsibility | None:
    """What 刑法第17条 leaves of the charges, or None where it leaves them all (16 or older, age unknown,
    a unit) and no condition applies."""
    age = defendant.age
    if age is None or age >= FULL_AGE or defendant.is_unit or not defendant.charges:
        return None
    catalogue = catalogue or default_catalogue()
    q = defendant.quantities
    grades = [i.grade for i in q.injuries]
    died = q.deaths is not None and q.deaths.value > 0
    harm_known = bool(grades) or q.deaths is not None
    grave_harm = died or any(g.rank >= InjuryGrade.SERIOUS_2.rank for g in grades)
    allowed = _PARTIAL if age >= PARTIAL_AGE else _GRAVE if age >= GRAVE_AGE else ()
    kept: list[str] = []
    excluded: list[str] = []
    conditions: list[str] = []
    for charge in defendant.charge_names:
        spec = catalogue.resolve(charge)
        name = spec.name if spec is not None else charge.removesuffix("罪")
        if name not in allowed or (name == "故意伤害" and harm_known and not grave_harm):
            excluded.append(charge)
            continue
        kept.append(charge)
        if age < PARTIAL_AGE:
            conditions.append(f"{name}罪须致人死亡或以特别残忍手段致人重伤造成严重残疾、情节恶劣，并经最高人民检察院核准追诉")
        elif name == "故意伤害" and not harm_known:
            conditions.append("故意伤害罪须致人重伤或者死亡")
        elif name == "走私、贩卖、运输、制造毒品":
            conditions.append("毒品犯罪仅对贩卖行为负刑事责任")
    rule = _CHILD_RULE if age < GRAVE_AGE else _GRAVE_RULE if age < PARTIAL_AGE else _PARTIAL_RULE
    if not excluded and not conditions:
        return None
    parts = [f"被告人犯罪时{age}周岁：{rule}"]
    if excluded:
        parts.append("对" + "、".join(f"{c.removesuffix('罪')}罪" for c in excluded) + "不负刑事责任")
    if not kept:
        parts.append("不应追究刑事责任，本建议不判处刑罚")
    elif conditions:
        parts.append("；".join(conditions))
    return Responsibility(answers_for=tuple(kept), excluded=tuple(excluded), message="；".join(parts))


def triable(case: Case, catalogue: ChargeCatalogue | None = None) -> Case:
    """The case with each defendant's charges cut to those their age lets them answer for.

    A 15-year-old charged with 抢劫 and 盗窃 is sentenced for 抢劫 alone; one who answers for none
    keeps their charges (the caller gives them no punishment, with the rule). The same case when
    nothing is cut.
    """
    cut: dict[int, Defendant] = {}
    for i, d in enumerate(case.defendants):
        r = responsibility(d, catalogue)
        if r is not None and r.excluded and not r.none:
            kept = set(r.answers_for)
            cut[i] = d.model_copy(update={"charges": [c for c in d.charges if c.name in kept]})
    if not cut:
        return case
    return case.model_copy(update={"defendants": [cut.get(i, d) for i, d in enumerate(case.defendants)]})
