"""Filling a case's defendants with circumstances, roles and quantities read from its texts.

Used on parsed judgments and on a case a prosecutor sends with only facts and defendant names:
what is already structured is kept, only missing parts are filled.
"""

from __future__ import annotations

import re
from typing import Any

from sentencing.case import (
    Aggravation,
    AggravationCode,
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    Defendant,
    Evidence,
    Quantities,
    Role,
    trusted,
)
from sentencing.charges import ChargeCatalogue, default_catalogue
from sentencing.parsing.circumstances import Finding, Span, find_circumstances
from sentencing.parsing.mentions import Attributor, NameFinder
from sentencing.parsing.pregnancy import find_pregnancies, pregnant_for
from sentencing.parsing.quantities import QuantityFinding, charge_amounts, find_quantities, quantities_for

C = CircumstanceCode
_ORDER = {code: k for k, code in enumerate(C)}
# Circumstances that include another: a surrender (自首) already is a confession (坦白).
_IMPLIED_BY = {C.CONFESSION: (C.SURRENDER,), C.MERITORIOUS: (C.MAJOR_MERITORIOUS,)}
_STATED_AS_SUCH = {C.CONFESSION: re.compile(r"坦白"), C.MERITORIOUS: re.compile(r"(?<!重大)立功")}


def _texts(case: Case) -> list[tuple[str, str]]:
    return [(source, text) for source, text in (("facts", case.facts), ("reasoning", case.reasoning)) if text]


def analyse(case: Case) -> tuple[list[Finding], list[QuantityFinding]]:
    """All circumstance/role cues and quantities in the case's facts and reasoning."""
    return analyse_texts([d.name for d in case.defendants], _texts(case))


def analyse_texts(names: list[str], texts: list[tuple[str, str]]) -> tuple[list[Finding], list[QuantityFinding]]:
    """:func:`analyse` for texts (``(source, text)``) about these defendants, before any case is built."""
    finder = NameFinder(names)
    findings: list[Finding] = []
    quantities: list[QuantityFinding] = []
    for source, text in texts:
        attributor = Attributor(text, finder)
        findings.extend(find_circumstances(text, source, attributor))
        findings.extend(find_pregnancies(text, source, attributor))
        quantities.extend(find_quantities(text, source, attributor))
    return findings, quantities


def _asserted(keyed: list[tuple[Any, Finding]]) -> dict[Any, Span]:
    """What the findings (with their keys: a circumstance or an aggravation) assert, and where.

    The court's negation prevails over the facts; its own assertion over a negation in a sentence it
    rejects (``本案的犯罪形态属于犯罪预备而非犯罪中止，该辩护意见，本院不予采纳`` beside ``系犯罪预备，可以比照既遂犯
    减轻处罚``): the rejected sentence names what the court holds as well as what it denies.
    """
    denials = {(k, f.evidence.start) for k, f in keyed if f.negated and f.evidence.source == "reasoning"}
    held = {k for k, f in keyed if not f.negated and f.evidence.source == "reasoning"
            and (k, f.evidence.start) not in denials}  # not where the same sentence also denies it
    negated_by_court = {k for k, _ in denials} - held
    asserted: dict[Any, Span] = {}
    for k, f in keyed:
        if f.negated or k in negated_by_court:
            continue
        # Prefer the court's own words as evidence.
        if k not in asserted or (f.evidence.source == "reasoning" and asserted[k].source != "reasoning"):
            asserted[k] = f.evidence
    return asserted


_AGGRAVATED_CRIME = {
    AggravationCode.HOME_INVASION: "抢劫", AggravationCode.PUBLIC_TRANSPORT: "抢劫",
    AggravationCode.FINANCIAL_INSTITUTION: "抢劫", AggravationCode.ARMED_WITH_GUN: "抢劫",
    AggravationCode.IMPERSONATING_POLICE: "抢劫", AggravationCode.GANG_RAPE: "强奸",
    AggravationCode.PUBLIC_RAPE: "强奸", AggravationCode.ARMED_AFFRAY: "斗殴", AggravationCode.HIT_AND_RUN: "交通肇事",
}
"""The crime whose tier each fact selects, as its charge names hold it: a co-offender's 轮奸 told in a
强迫卖淫 judgment, or a 持械聚众斗殴 charged as 故意伤害, is no fact of the defendant's charges."""


def aggravations_for(name: str, findings: list[Finding], charges: list[str]) -> list[Aggravation]:
    """One defendant's tier-selecting facts (入户抢劫, 轮奸…) for the crimes charged, asserted and not
    denied as circumstances are."""
    asserted = _asserted([(f.aggravation, f) for f in findings if f.aggravation is not None and name in f.names
                          and any(_AGGRAVATED_CRIME[f.aggravation] in c for c in charges)])
    return [trusted(Aggravation, {"code": a, "evidence": asserted[a].evidence()})
            for a in AggravationCode if a in asserted]


_OTHER_CIRCUMSTANCES = {"情节严重": "其他严重情节", "情节特别严重": "其他特别严重情节"}
"""情节严重 as tier labels write it beside an amount (``数额巨大或者有其他严重情节``)."""


def _tier_label(catalogue: ChargeCatalogue, charge: str, phrase: str, *, implied: bool = False) -> str | None:
    """The tier of ``charge`` that ``phrase`` names; None when the charge is not catalogued or no tier
    is named by it.

    The lightest tier whose label holds the words (``数额巨大`` in ``数额巨大或者有其他严重情节``), or holds
    情节严重 as labels write it beside an amount (``其他严重情节``). ``implied``: instead the tier the words
    imply where no label holds them: where the law has no tier above 巨大 (集资诈骗 since 2021), 特别巨大
    is in the heaviest 巨大 tier; where the basic tier is unnamed (挪用资金's 基本犯) and a 巨大 tier
    lies above it, 较大 is the basic tier.
    """
    spec = catalogue.resolve(charge)
    if spec is None:
        return None
    labels = [t.label for t in spec.tiers]
    if not implied:
        for words in (phrase, _OTHER_CIRCUMSTANCES.get(phrase)):
            if words is not None and (found := next((label for label in labels if words in label), None)):
                return found
        return None
    if any(phrase in label for label in labels):
        return None
    kind = phrase[:2]  # 数额, 数量
    if phrase.endswith("特别巨大"):
        return next((label for label in reversed(labels) if f"{kind}巨大" in label), None)
    if phrase.endswith("较大") and any(f"{kind}巨大" in label for label in labels):
        return labels[spec.default_tier]
    return None


def stated_tiers_for(name: str, findings: list[Finding], charges: list[Charge],
                     catalogue: ChargeCatalogue | None = None) -> list[Charge]:
    """The charges with the tier the texts say the defendant's conduct reaches (``骗取他人财物，数额巨大``)
    where none is set, and where it was read.

    A statement counts for a charge when it names one of the charge's tiers; beside other charges only
    when no other charge has such a tier and it states an amount or quantity (数额…, 数量…), or when the
    charge is the one named last before it in its sentence (``盗窃…数额较大；抢夺…``). Asserted
    and not denied as circumstances are (a defence's claim the court rejects is none); the court's
    reasoning outranks the facts, and a later statement an earlier one.
    """
    open_charges = [c for c in charges if c.tier is None]
    if not open_charges:
        return charges
    catalogue = catalogue or default_catalogue()
    keyed: list[tuple[tuple[str, str], Finding]] = []
    for f in findings:
        if f.tier is None or name not in f.names:
            continue
        labels = {c.name: label for c in open_charges if (label := _tier_label(catalogue, c.name, f.tier))}
        if not labels:  # words no tier label holds, that a tier's words imply (集资诈骗's 数额特别巨大)
            labels = {c.name: label for c in open_charges
                      if (label := _tier_label(catalogue, c.name, f.tier, implied=True))}
        # Beside another charge, 情节… words may be that charge's own element (寻衅滋事's 情节恶劣, told
        # in its words: 随意殴打他人，情节恶劣): only amounts and quantities go to the one charge with them.
        if len(labels) > 1 or (labels and (len(charges) > len(open_charges) or
                                           (len(charges) > 1 and f.tier.startswith("情节")))):
            meant = _charge_named_before(f, charges)
            labels = {meant.name: labels[meant.name]} if meant is not None and meant.name in labels else {}
        keyed.extend(((charge_name, label), f) for charge_name, label in labels.items())
    if not keyed:
        return charges
    chosen: dict[str, tuple[str, Span]] = {}
    for (charge_name, label), span in _asserted(keyed).items():
        have = chosen.get(charge_name)
        if have is None or (span.source == "reasoning", span.start) > (have[1].source == "reasoning", have[1].start):
            chosen[charge_name] = (label, span)
    return [c.model_copy(update={"tier": chosen[c.name][0], "tier_evidence": chosen[c.name][1].evidence()})
            if c.tier is None and c.name in chosen else c for c in charges]


def _charge_named_before(f: Finding, charges: list[Charge]) -> Charge | None:
    """The charge a tier statement's sentence names last before the statement, if it names one."""
    text = f.evidence.text
    at = f.tier_at - f.evidence.start
    where, charge = max(((text.rfind(c.name.removesuffix("罪"), 0, at), c) for c in charges), key=lambda pc: pc[0])
    return charge if where >= 0 else None


def circumstances_for(name: str, findings: list[Finding]) -> list[Circumstance]:
    """One defendant's circumstances: asserted somewhere, not negated by the court's reasoning."""
    asserted: dict[CircumstanceCode, Span] = _asserted(
        [(f.code, f) for f in findings if f.code is not None and name in f.names])
    for code, wider in _IMPLIED_BY.items():
        if code in asserted and any(w in asserted for w in wider):
            # Keep 坦白 beside 自首 only when the texts call it 坦白: 如实供述 is part of every 自首.
            if not _STATED_AS_SUCH[code].search(asserted[code].text):
                del asserted[code]
    return [
        trusted(Circumstance, {"code": c, "evidence": e.evidence()})
        for c, e in sorted(asserted.items(), key=lambda kv: _ORDER[kv[0]])
    ]


def role_for(name: str, findings: list[Finding]) -> tuple[Role, Evidence | None] | None:
    """The role the texts give a defendant; the reasoning's last word wins over the facts."""
    about = [f for f in findings if f.role is not None and name in f.names]
    if any(f.negated and f.evidence.source == "reasoning" for f in about) and not any(
        not f.negated and f.evidence.source == "reasoning" for f in about
    ):
        return None  # the court denies a role it does not then assign (``不必区分主从犯``)
    mine = [f for f in about if not f.negated]
    if not mine:
        return None
    mine.sort(key=lambda f: (f.evidence.source == "reasoning", f.evidence.start))
    best = mine[-1]
    # A group sentence (``主犯张某…从犯李某``) names both: prefer a finding naming this defendant alone.
    alone = [f for f in mine if len(f.names) == 1]
    if alone:
        best = alone[-1]
    assert best.role is not None
    return best.role, best.evidence.evidence()


def amounts_by_charge(
    name: str, charges: list[Charge], quantities: Quantities, quantity_findings: list[QuantityFinding],
    catalogue: ChargeCatalogue | None = None,
) -> list[Charge]:
    """The charges, each with its own amount, where the defendant has several that an amount prices (数罪:
    ``收受…28000元`` beside ``骗取…30万元``) and the texts tell each one's (:func:`charge_amounts`).

    Each such charge then carries the defendant's ``quantities`` with its own amount. Where any of them
    has no amount of its own, or all come to the one amount, the charges are returned as they are: the
    one amount then prices each, and the guideline says so (``amount_unattributed``).
    """
    catalogue = catalogue or default_catalogue()
    priced = {c.name: spec for c in charges if (spec := catalogue.resolve(c.name)) is not None and spec.prices_amount}
    if len(priced) < 2:
        return charges
    found = charge_amounts(name, quantity_findings, {spec.name: spec.amount_acts for spec in priced.values()})
    own = {given: found.get(spec.name) for given, spec in priced.items()}
    if any(m is None for m in own.values()) or len({m.value for m in own.values() if m is not None}) < 2:
        return charges
    return [c.model_copy(update={"quantities": quantities.model_copy(update={"amount_yuan": own[c.name]})})
            if c.name in own else c for c in charges]


def _age_circumstance(age: int | None) -> CircumstanceCode | None:
    if age is None:
        return None
    if age < 18:
        return C.JUVENILE
    if age >= 75:
        return C.ELDERLY
    return None


def circumstances_with_age(name: str, age: int | None, findings: list[Finding]) -> list[Circumstance]:
    """:func:`circumstances_for`, plus 未成年/已满七十五周岁 from the age when the texts do not say it."""
    circumstances = circumstances_for(name, findings)
    code = _age_circumstance(age)
    if code is not None and all(c.code is not code for c in circumstances):
        circumstances.append(Circumstance(code=code))
    return circumstances


def extract_defendant_facts(case: Case, catalogue: ChargeCatalogue | None = None) -> Case:
    """The case with circumstances, roles, quantities, a pregnancy and stated tiers filled in for
    defendants lacking them (tiers named as ``catalogue``'s labels, by default the bundled one's).

    A defendant keeps whatever it already has: circumstances if any are set, quantities if not
    empty, a role if it is not the default (``sole``) or has evidence, a charge's tier if set.
    """
    if not case.defendants:
        return case
    findings, quantity_findings = analyse(case)
    defendants = [d.model_copy(update=missing_facts(d, findings, quantity_findings, catalogue))
                  for d in case.defendants]
    return case.model_copy(update={"defendants": defendants})


def missing_facts(d: Defendant, findings: list[Finding], quantity_findings: list[QuantityFinding],
                  catalogue: ChargeCatalogue | None = None) -> dict[str, object]:
    """What :func:`extract_defendant_facts` fills in for one defendant, as a model update."""
    update: dict[str, object] = {}
    charges = stated_tiers_for(d.name, findings, d.charges, catalogue)
    if charges is not d.charges:
        update["charges"] = charges
    if not d.circumstances:
        update["circumstances"] = circumstances_with_age(d.name, d.age, findings)
    if not d.aggravations:
        found_aggravations = aggravations_for(d.name, findings, d.charge_names)
        if found_aggravations:
            update["aggravations"] = found_aggravations
    if d.quantities.is_empty():
        update["quantities"] = quantities = quantities_for(d.name, quantity_findings)
        if all(c.quantities is None for c in charges):
            charges = amounts_by_charge(d.name, charges, quantities, quantity_findings, catalogue)
            if charges is not d.charges:
                update["charges"] = charges
    if d.pregnant is None and pregnant_for(d.name, findings):
        update["pregnant"] = True
    if d.role is Role.SOLE and d.role_evidence is None:
        found = role_for(d.name, findings)
        if found is not None:
            update["role"], update["role_evidence"] = found
    return update
