"""A full judgment text → :class:`~sentencing.case.Case`: court, defendants, facts, reasoning, outcome.

What is known before judgment (court, facts, indicted charges, circumstances) is kept apart from
the outcome (``Case.judgment``, each defendant's ``sentence``): the facts lose the prosecutor's
recommended sentence and the reasoning loses the clauses that state the sentence, so that a model
input never contains its label.
"""

from __future__ import annotations

import datetime as dt

from sentencing.case import (
    Case,
    Charge,
    ChargeSentence,
    Circumstance,
    CircumstanceCode,
    Defendant,
    Evidence,
    Role,
    looks_like_unit,
    trusted,
)
from sentencing.parsing.circumstances import Finding
from sentencing.parsing.court import parse_court
from sentencing.parsing.defendants import HeaderDefendant, parse_header_defendants, parse_indictment
from sentencing.parsing.document import find_dates, split_judgment
from sentencing.parsing.extract import (
    aggravations_for,
    analyse_texts,
    circumstances_with_age,
    role_for,
    stated_tiers_for,
)
from sentencing.parsing.judgment import DefendantOutcome, parse_judgment_section
from sentencing.parsing.mentions import with_first_char_filter
from sentencing.parsing.pregnancy import pregnant_for
from sentencing.parsing.quantities import QuantityFinding, quantities_for
from sentencing.parsing.recommendation import strip_recommendation

# A clause of the reasoning that states (part of) this case's sentence: 缓刑, a term, a fine, an
# exemption. Clauses about an earlier sentence (``曾因犯罪被判处有期徒刑``: the basis of 累犯) stay.
# (Every alternative begins with a literal, so that the scan skips to possible first characters.)
_STATES_SENTENCE = with_first_char_filter(
    r"缓刑|判处|处以|决定执行|免予刑事处罚|免于刑事处罚|免除处罚|免予处罚|实刑|"
    + "|".join(
        rf"{penalty}[^，,；;。]{{0,4}}(?:[0-9一二三四五六七八九十两]|人民币)"
        for penalty in ("有期徒刑", "拘役", "管制", "罚金")
    )
    + r"|无期徒刑|死刑|剥夺政治权利|没收财产"
)
_EARLIER_SENTENCE = with_first_char_filter(
    r"曾|前罪|刑满|释放|执行完毕|服刑|赦免|假释|以上刑罚|之罪|前科|累犯|考验期|监外执行|因犯"
)
_CLAUSE_ENDS = "，,；;。"
# The fields a defendant records as given (``model_fields_set``), as its validating constructor would.
_GIVEN = frozenset({"name", "is_unit", "charges", "age", "circumstances", "quantities"})
_GIVEN_PREGNANT = frozenset({"pregnant"})
_GIVEN_AGGRAVATIONS = frozenset({"aggravations"})
_GIVEN_ROLE = frozenset({"role", "role_evidence"})
_GIVEN_OUTCOME = frozenset({"sentence", "sentence_evidence", "charge_sentences"})
_NONE: frozenset[str] = frozenset()
_NAME_ONLY = frozenset({"name"})


def strip_sentence_statements(text: str) -> str:
    """The text without the clauses that state a sentence of this case (``可依法适用缓刑``, ``原判…判处…``).

    Clauses about an earlier conviction (``曾因犯盗窃罪被判处有期徒刑``, the basis of 累犯) stay.
    """
    cut: list[tuple[int, int]] = []
    for m in _STATES_SENTENCE.finditer(text):
        if cut and m.start() < cut[-1][1]:
            continue
        start = max(text.rfind(ch, 0, m.start()) for ch in _CLAUSE_ENDS) + 1
        ends = [p for ch in _CLAUSE_ENDS if (p := text.find(ch, m.end())) >= 0]
        end = min(ends) + 1 if ends else len(text)
        if _EARLIER_SENTENCE.search(text, start, end):
            continue
        cut.append((start, end))
    if not cut:
        return text
    out: list[str] = []
    last = 0
    for start, end in cut:
        kept = text[last:start]
        if text[end - 1:end] == "。" and kept and kept[-1] in "，,；;":
            kept = kept[:-1] + "。"  # the clause ended its sentence: end the one before instead
        out.append(kept)
        last = end
    out.append(text[last:])
    return "".join(out)


def _judgment_date(text: str, start: int) -> dt.date | None:
    """The date the judgment was signed: the first full date after the judgment section."""
    for _, _, (y, m, d) in find_dates(text, start):
        try:
            return dt.date(y, m, d)
        except ValueError:
            continue
    return None


def _offence_date(facts: str, birth: dt.date) -> dt.date | None:
    for _, _, (y, m, d) in find_dates(facts):
        try:
            day = dt.date(y, m, d)
        except ValueError:
            continue
        if (day - birth).days > 365 * 10:
            return day
    return None


def _age_at(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _defendant(
    person: HeaderDefendant | None,
    name: str,
    charges: list[Charge],
    outcome: DefendantOutcome | None,
    judgment: str,
    facts: str,
    findings: list[Finding],
    quantity_findings: list[QuantityFinding],
) -> Defendant:
    """The defendant from the header, the judgment section and what the texts say about them.

    As :func:`extract_defendant_facts` fills a bare defendant, with the header's prior record (前科)
    kept beside the circumstances the texts give.
    """
    age = None
    if person is not None and person.birth_date is not None and (offence := _offence_date(facts, person.birth_date)):
        age = _age_at(person.birth_date, offence)
    age = age if age is not None and 0 <= age <= 120 else None
    circumstances = circumstances_with_age(name, age, findings)
    if person is not None and person.prior_record is not None:
        if all(c.code is not CircumstanceCode.PRIOR_RECORD for c in circumstances):
            circumstances.append(Circumstance(code=CircumstanceCode.PRIOR_RECORD, evidence=person.prior_record))
    found_role = role_for(name, findings)
    role, role_evidence = found_role or (Role.SOLE, None)
    sentence = sentence_evidence = None
    charge_sentences: list[ChargeSentence] = []
    if outcome is not None:
        sentence = outcome.sentence
        sentence_evidence = outcome.evidence(judgment) if sentence else None
        charge_sentences = [
            trusted(ChargeSentence, {
                "charge": c.charge,
                "sentence": c.sentence,
                "evidence": Evidence.of("judgment", c.start, c.end, judgment[c.start:c.end]),
            })
            for c in outcome.crimes
        ]
        if not charges:
            charges = [trusted(Charge, {"name": c.charge, "evidence": None, "tier": None, "tier_evidence": None,
                                         "quantities": None},
                               _NAME_ONLY) for c in outcome.crimes]
    pregnant = pregnant_for(name, findings) or None
    aggravations = aggravations_for(name, findings, [c.name for c in charges])
    charges = stated_tiers_for(name, findings, charges)
    # What validation would check holds by construction: names of 1 to 40 characters and charges of
    # 1 to 60 (the patterns that read them), an age of 0 to 120 (above).
    return trusted(Defendant, {
        "name": name,
        "is_unit": (person is not None and person.is_unit) or looks_like_unit(name),
        "charges": charges,
        "role": role,
        "role_evidence": role_evidence,
        "circumstances": circumstances,
        "aggravations": aggravations,
        "quantities": quantities_for(name, quantity_findings),
        "age": age,
        "pregnant": pregnant,
        "sentence": sentence,
        "sentence_evidence": sentence_evidence,
        "charge_sentences": charge_sentences,
    }, _GIVEN | (_GIVEN_ROLE if found_role else _NONE) | (_GIVEN_OUTCOME if outcome is not None else _NONE)
        | (_GIVEN_PREGNANT if pregnant else _NONE) | (_GIVEN_AGGRAVATIONS if aggravations else _NONE))


def _reconcile_names(outcomes: dict[str, DefendantOutcome], people: dict[str, HeaderDefendant]) -> None:
    """Pair a judgment-section name with a header name spelled differently (``邱剑锋``/``邱剑峰``).

    Pairs only when one name on each side is left over, or when the surnames match one to one;
    the header's spelling is kept, because the facts use it.
    """
    loose_out = [n for n in outcomes if n not in people]
    loose_people = [n for n in people if n not in outcomes]
    if not loose_out or not loose_people:
        return
    pairs: list[tuple[str, str]] = []
    if len(loose_out) == 1 and len(loose_people) == 1:
        pairs.append((loose_out[0], loose_people[0]))
    else:
        for o in loose_out:
            same = [p for p in loose_people if p[0] == o[0]]
            if len(same) == 1 and sum(1 for x in loose_out if x[0] == o[0]) == 1:
                pairs.append((o, same[0]))
    for o, p in pairs:
        outcome = outcomes.pop(o)
        outcome.name = p
        outcomes[p] = outcome


def parse_judgment_document(text: str, *, case_id: str, source: str = "judge", synthetic: bool = False) -> Case:
    """Read a full criminal judgment into a case; parts it cannot find are left empty, never guessed."""
    parts = split_judgment(text)
    court, number = parse_court(text, header_end=parts.procedure.end or None)
    judgment = parts.part("judgment").strip()
    # An appeal's facts quote the first-instance sentence (原判…判处…): as close to the label as
    # the prosecutor's recommendation, so it goes too.
    facts = strip_sentence_statements(strip_recommendation(parts.part("facts").strip()))
    reasoning = strip_sentence_statements(strip_recommendation(parts.part("reasoning").strip()))
    header_start = number.end if number else (court.evidence.end if court and court.evidence else 0)
    header = parse_header_defendants(text, header_start, max(header_start, parts.header.end or parts.procedure.end))
    # From the header on: a private prosecution states its charge (自诉人…以被告人…犯…罪) before the procedure.
    indicted = parse_indictment(text, header_start, parts.facts.end)
    outcomes = {o.name: o for o in parse_judgment_section(judgment)}
    people = {p.name: p for p in header}
    _reconcile_names(outcomes, people)
    names = list(people)
    if names and not any(p.birth_date or p.sex for p in header) and all(indicted.of(n) for n in names):
        # A short procedural header names only some parties in passing (``被告人彭某及其辩护人王某、被告人
        # 李某到庭``), with no particulars: when the indictment spells every name found the same way, it
        # lists the rest. A full header lists the parties to this judgment (an appeal's may be fewer).
        known = {indicted.aliases.get(n, n) for n in names}
        names += [n for n in indicted.names if n not in known]
    for name in outcomes:
        if name not in names:
            names.append(name)
    if not names:
        names = indicted.names
    texts = [(source, part) for source, part in (("facts", facts), ("reasoning", reasoning)) if part]
    findings, quantity_findings = analyse_texts(names, texts) if names else ([], [])
    defendants = [
        _defendant(people.get(n), n, indicted.of(n), outcomes.get(n), judgment, facts, findings, quantity_findings)
        for n in names
    ]
    return Case(
        id=case_id,
        source=source,
        synthetic=synthetic,
        case_number=number.text if number else None,
        court=court,
        province=court.province if court else (number.province if number else None),
        date=_judgment_date(text, parts.judgment.end) if not parts.judgment.empty else None,
        facts=facts,
        reasoning=reasoning,
        judgment=judgment,
        defendants=defendants,
    )
