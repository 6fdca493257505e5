"""The warnings of one defendant's recommendation, each with a code from serve.schemas.WARNING_CODES.

The guideline's named warnings and the model's come with the prediction; the others are read here
from the case and the served rule set: the age's limits on the charges (刑法第17条), a pregnancy at
trial (第49条、第72条), a co-defendant's quantity in a joint crime, a statutory tier no fact decides,
a prior record that may be 累犯 or 毒品再犯.
"""

from __future__ import annotations

from typing import Any

from sentencing.case import Case, Defendant, Measure
from sentencing.charges import ChargeCatalogue
from sentencing.guideline import undetermined_tiers
from sentencing.liability import responsibility
from sentencing.parsing.recidivism import drug_reoffence_hint, recidivism_hint
from sentencing.sentence import PROBATION_MAX_MONTHS
from serve.schemas import WarningOut


def defendant_warnings(catalogue: ChargeCatalogue, case: Case, defendant: Defendant,
                       prediction: Any) -> list[WarningOut]:
    """All of them, the age's limits first (they decide whether there is a sentence at all)."""
    g = prediction.guideline
    return (_responsibility_warning(catalogue, defendant) + _pregnancy_warning(catalogue, defendant, prediction)
            + _prediction_warnings(prediction) + _co_defendant_quantity_warning(case, defendant, g)
            + _tier_warnings(catalogue, g, defendant) + _recidivism_warning(case, defendant))


def _pregnancy_warning(catalogue: ChargeCatalogue, defendant: Defendant, prediction: Any) -> list[WarningOut]:
    """审判时怀孕的妇女: the law's two rules, what was done (no death, where a charge could carry it) and
    what the court must weigh (probation)."""
    if not defendant.pregnant:
        return []
    message = "审判时怀孕的妇女不适用死刑（含死刑缓期执行，刑法第四十九条）"
    if any(spec is None or spec.reaches_death for spec in map(catalogue.resolve, defendant.charge_names)):
        message += "：死刑的概率已计入无期徒刑"
    point = prediction.range.point_months
    if point is not None and point <= PROBATION_MAX_MONTHS:
        message += ("；建议刑期在三年以下，同时符合缓刑条件（犯罪情节较轻、有悔罪表现、没有再犯罪的危险、"
                    "对所居住社区没有重大不良影响）的，应当宣告缓刑（刑法第七十二条）")
    return [WarningOut(code="pregnant_at_trial", field="pregnant", message=message)]


def _prediction_warnings(prediction: Any) -> list[WarningOut]:
    """The guideline's named warnings, then the model's own (those the guideline did not already give)."""
    out: list[WarningOut] = []
    guideline = prediction.guideline
    seen: set[str] = set()
    if guideline is not None:
        for w in guideline.warnings:
            out.append(WarningOut(code=w.code, field=w.field, message=w.message))
            seen.add(w.message)
    for message in prediction.warnings:
        if message not in seen:
            out.append(WarningOut(code="model", message=message))
    return out


def _tier_warnings(catalogue: ChargeCatalogue, guideline: Any, defendant: Defendant) -> list[WarningOut]:
    """A statutory tier no fact decided (sentencing.guideline.undetermined_tiers): its range may be the wrong one."""
    if guideline is None:
        return []
    return [WarningOut(code="tier_undetermined", field="tiers", message=message)
            for _, message in undetermined_tiers(guideline, catalogue, defendant)]


_SHARED_QUANTITIES = {
    "quantities.amount_yuan": ("amount_yuan", "犯罪数额"),
    "quantities.drug_grams": ("drug_grams", "毒品数量"),
    "quantities.injuries": ("injuries", "伤情"),
    "quantities.deaths": ("deaths", "死亡人数"),
}


def _quantity_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Measure):
        return f"{value.value:g}"
    if isinstance(value, dict):
        return "、".join(f"{drug}{m.value:g}克" for drug, m in value.items()) or None
    return "、".join(f"{i.grade.label}{i.count}人" for i in value) or None


def _co_defendant_quantity_warning(case: Case, defendant: Defendant, guideline: Any) -> list[WarningOut]:
    """A quantity that selects the tier is missing for this defendant but was read for a co-defendant
    charged with the same crime: in a joint crime (共同犯罪) each takes the amount, drugs or harm of the
    crimes they took part in, and extraction reads them for whoever the sentence names (``由宋某操作
    取走15000元``). The prosecutor is told, not guessed for: the other's act may be their own alone."""
    if guideline is None or defendant.is_unit or len(case.defendants) < 2:
        return []
    mine = set(defendant.charge_names)
    out = []
    for w in guideline.warnings:
        shared = _SHARED_QUANTITIES.get(w.field or "") if w.code == "missing_quantity" else None
        if shared is None:
            continue
        attr, label = shared
        others = [(d.name, text) for d in case.defendants
                  if d is not defendant and not d.is_unit and mine & set(d.charge_names)
                  and (text := _quantity_text(getattr(d.quantities, attr)))]
        if others:
            unit = "元" if attr == "amount_yuan" else ""
            who = "、".join(f"{name}为{text}{unit}" for name, text in others[:3])
            out.append(WarningOut(code="co_defendant_quantity", field=w.field, message=(
                f"未从案情中认定本人的{label}，同案被告人{who}：如系共同犯罪，各共犯按其参与的共同犯罪处罚"
                f"（主犯按其组织、指挥或参与的全部犯罪，刑法第26条、第27条），请核实后录入本人{label}")))
    return out


def _responsibility_warning(catalogue: ChargeCatalogue, defendant: Defendant) -> list[WarningOut]:
    """刑法第17条 (sentencing.liability): charges the defendant is too young to answer for, first."""
    r = responsibility(defendant, catalogue)
    if r is None:
        return []
    if r.none:
        return [WarningOut(code="no_criminal_responsibility", field="age", message=r.message)]
    return [WarningOut(code="age_limits_responsibility", field="age", message=r.message)]


def _recidivism_warning(case: Case, defendant: Defendant) -> list[WarningOut]:
    """A stated prior record that may make it 累犯 or 毒品再犯 (sentencing.parsing.recidivism)."""
    out = []
    if hint := recidivism_hint(case, defendant):
        out.append(WarningOut(code="possible_recidivist", field="circumstances", message=hint.message))
    if drugs := drug_reoffence_hint(case, defendant):
        out.append(WarningOut(code="drug_reoffender", field="circumstances", message=drugs))
    return out
