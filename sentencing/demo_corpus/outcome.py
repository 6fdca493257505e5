"""Sentencing a drafted case: the guideline's point, then the province, the judge and the habits of courts.

The guideline (:func:`sentencing.guideline.calculate`) gives each crime's adjusted term within its
statutory tier. A generated court then departs from it the way real courts do: a provincial
leniency factor (synthetic, ``demo_provinces.toml``), a judge-level lognormal noise, whole months
rounded to the figures judgments favour, 拘役 for short terms where the statute allows it, 缓刑 by a
probability that follows the guideline's form and the defendant's circumstances, fines where the
tier carries them, and occasionally 管制, 单处罚金 or 免予刑事处罚 at the light end and death at the
heavy end. 数罪并罚 (art. 69) lands between the highest term and the sum.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

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
from sentencing.charges import ChargeCatalogue, ChargeSpec, FinePolicy, Tier
from sentencing.demo_corpus.scenario import Draft, Person
from sentencing.guideline import ChargeCalculation, calculate
from sentencing.sentence import COMBINED_CAP_MONTHS, Sentence, SentenceForm, SentenceKind

C = CircumstanceCode
_LENIENT = (C.SURRENDER, C.RECONCILIATION, C.JUVENILE, C.MAJOR_MERITORIOUS)
_HEAVY = (SentenceKind.LIFE, SentenceKind.DEATH_SUSPENDED, SentenceKind.DEATH)


class UnsentencedCharge(RuntimeError):
    """The guideline could not price a charge the demo world stages (the two data files disagree)."""


class Priced(NamedTuple):
    """What the generator takes from the guideline for one crime."""

    adjusted_months: float | None
    kind: SentenceKind
    fine_yuan: int | None
    tier: Tier
    spec: ChargeSpec
    min_months: int | None
    max_months: int | None


def floor_significant(x: float, digits: int = 2) -> float:
    """``x`` floored to ``digits`` significant figures (29,650 → 29,000; 187.3 → 180 with two)."""
    if x <= 0:
        return x
    unit = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return math.floor(x / unit + 1e-9) * unit


def _threshold_digits(catalogue: ChargeCatalogue) -> int:
    """The fewest significant figures that keep every threshold of the catalogue exact.

    Flooring a quantity to that many figures never moves it across a threshold, so the tier the
    guideline selects is exact; the quantity moves by less than 10% of itself (two figures),
    well inside the judge-level noise.
    """
    values = [t.value for spec in catalogue.charges() for t in spec.thresholds.values()]
    values += [c.value for spec in catalogue.charges() for tier in spec.tiers for c in tier.when if c.value]
    values += [t.value for per in catalogue.provinces.values() for ts in per.values() for t in ts.values()]
    for digits in range(2, 7):
        if all(floor_significant(v, digits) == v for v in values):
            return digits
    return 7


def _age_class(age: int) -> int:
    """The ages the guideline distinguishes (未成年 under 16 / 16–18, adult, 75+), as representatives."""
    if age < 16:
        return 15
    if age < 18:
        return 17
    return 76 if age >= 75 else 30


class Guideline:
    """:func:`sentencing.guideline.calculate`, memoised on the facts it reads.

    Amounts, grams and blood alcohol are passed floored to two significant figures (or as many as
    the catalogue's thresholds need, :func:`_threshold_digits`) and ages as the class the guideline
    distinguishes, so that a million-case corpus reuses most
    results; the generated sentence stays a function of ``(seed, index)`` alone, cached or not.
    """

    def __init__(self, catalogue: ChargeCatalogue, size: int = 100_000) -> None:
        self.catalogue = catalogue
        self.digits = _threshold_digits(catalogue)
        self._size = size
        self._cache: dict[tuple, tuple[SentenceForm, tuple[Priced, ...]]] = {}
        self._stubs: dict[str | None, Case] = {}
        self.calls = 0
        self.hits = 0

    def price(self, person: Person, province: str) -> tuple[SentenceForm, tuple[Priced, ...]]:
        cat = self.catalogue
        province_key = province if province in cat.provinces else None
        d = self.digits
        offences = tuple(
            (
                o.profile.name,
                None if o.amount is None else floor_significant(o.amount, d),
                tuple((name, floor_significant(g, d) if len(o.drugs) == 1 else g) for name, g in o.drugs),
                o.injury, o.injured, o.deaths,
                None if o.bac is None else floor_significant(o.bac, d),
                o.occurrences, o.attempt, o.joint,
            )
            for o in person.offences
        )
        key = (offences, person.role, tuple(person.circumstances), _age_class(person.age), province_key)
        self.calls += 1
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        value = self._calculate(person, province_key)
        if len(self._cache) >= self._size:
            self._cache.clear()
        self._cache[key] = value
        return value

    def _calculate(self, person: Person, province: str | None) -> tuple[SentenceForm, tuple[Priced, ...]]:
        stub = self._stubs.get(province)
        if stub is None:
            stub = Case(id="demo-guideline", source="synthetic", synthetic=True, province=province)
            self._stubs[province] = stub
        defendant = _priced_defendant(person, self.digits)
        result = calculate(defendant, stub, catalogue=self.catalogue)
        if len(result.charge_results) != len(person.offences):
            names = [o.profile.name for o in person.offences]
            raise UnsentencedCharge(f"guideline priced {result.charges} for {names}: {result.warnings}")
        priced: list[Priced] = []
        for offence, calc in zip(person.offences, result.charge_results, strict=True):
            spec = self.catalogue.resolve(offence.profile.name)
            if spec is None or not calc.recognised:
                raise UnsentencedCharge(f"the charge catalogue does not know {offence.profile.name!r}")
            priced.append(
                Priced(
                    calc.adjusted_months, calc.kind, calc.fine_yuan, _tier(spec, calc), spec,
                    calc.statutory.min_months, calc.statutory.max_months,
                )
            )
        return result.form, tuple(priced)


def _priced_defendant(person: Person, digits: int) -> Defendant:
    """The defendant as the guideline sees it: floored quantities, the age class; built unvalidated
    (``model_construct``) because every value comes from the generator's own typed draft."""

    def floor2(x: float) -> float:
        return floor_significant(x, digits)

    amount = occurrences = deaths = bac = None
    drug_grams: dict[str, Measure] = {}
    injuries: list[Injury] = []
    for o in person.offences:
        if o.amount is not None:
            amount = Measure.model_construct(value=floor2(o.amount), evidence=None)
        for name, grams in o.drugs:
            # Several drugs are summed as methamphetamine-equivalent grams: floored parts could
            # sum below a threshold their exact sum reaches, so they go in exact.
            value = floor2(grams) if len(o.drugs) == 1 else grams
            drug_grams[name] = Measure.model_construct(value=value, evidence=None)
        if o.injury is not None:
            injuries.append(Injury.model_construct(grade=o.injury, count=1, evidence=None))
        if o.injured:
            injuries.append(Injury.model_construct(grade=InjuryGrade.SERIOUS_2, count=o.injured, evidence=None))
        if o.occurrences:
            occurrences = Measure.model_construct(value=float(o.occurrences), evidence=None)
        if o.deaths:
            deaths = Measure.model_construct(value=float(o.deaths), evidence=None)
        if o.bac is not None:
            bac = Measure.model_construct(value=floor2(o.bac), evidence=None)
    quantities = Quantities.model_construct(
        amount_yuan=amount, drug_grams=drug_grams, injuries=injuries, occurrences=occurrences, deaths=deaths,
        blood_alcohol_mg_per_100ml=bac,
    )
    return Defendant.model_construct(
        name=person.name,
        charges=[Charge.model_construct(name=o.profile.name, evidence=None) for o in person.offences],
        role=person.role,
        role_evidence=None,
        circumstances=[Circumstance.model_construct(code=c, evidence=None) for c in person.circumstances],
        quantities=quantities,
        age=_age_class(person.age),
        sentence=None,
        sentence_evidence=None,
        charge_sentences=[],
    )


def sentence_case(draft: Draft, guideline: Guideline) -> None:
    """Give every defendant of the draft a sentence (and one per crime when there are several)."""
    for person in draft.defendants:
        form, priced = guideline.price(person, draft.province.province.code)
        _sentence_person(draft, person, form, priced)


def _sentence_person(draft: Draft, person: Person, form: SentenceForm, priced: tuple[Priced, ...]) -> None:
    rng = draft.rng
    several = len(person.offences) > 1
    factor = draft.province.leniency * draft.judge_factor * math.exp(rng.gauss(0.0, 0.08))
    per_charge = [_charge_sentence(rng, person, p, factor, several) for p in priced]
    person.degrees = [p.tier.label for p in priced]
    if several:
        person.charge_sentences = per_charge
        combined = _combine(rng, per_charge)
    else:
        combined = per_charge[0]
    restricted = any(p.spec.probation == "restricted" for p in priced)
    person.sentence = _probation(draft, person, combined, form, restricted)


def _tier(spec: ChargeSpec, calc: ChargeCalculation) -> Tier:
    for tier in spec.tiers:
        if tier.label == calc.statutory.tier_label:
            return tier
    return spec.tiers[0]


def _charge_sentence(rng: random.Random, person: Person, priced: Priced, factor: float, several: bool) -> Sentence:
    """One crime's sentence, before 缓刑 (decided on the sentence actually executed)."""
    tier = priced.tier
    fine = _fine(rng, priced, factor)
    if priced.kind is SentenceKind.LIFE or priced.adjusted_months is None:
        return _life_or_death(rng, person, priced.spec, tier)
    adjusted = priced.adjusted_months
    months = adjusted * factor
    low = min(float(priced.min_months or 1), adjusted)
    high = float(priced.max_months or 180)
    months = min(max(months, low), high)
    light = tier.allows_detention
    if not several and light and months < 4:
        # The light end: 免予刑事处罚 for the clearly lenient, 单处罚金 where the statute allows it.
        r = rng.random()
        lenient = person.role in (Role.ACCESSORY, Role.COERCED) or any(person.has(c) for c in _LENIENT)
        if lenient and months < 3 and r < 0.25:
            return Sentence(kind=SentenceKind.EXEMPT)
        if tier.fine is FinePolicy.OR_ONLY and r > 0.9:
            return Sentence(kind=SentenceKind.FINE_ONLY, fine_yuan=fine or _nice_yuan(2000 * factor))
    if not several and tier.min_kind is SentenceKind.SURVEILLANCE and months < 5 and rng.random() < 0.06:
        return Sentence(kind=SentenceKind.SURVEILLANCE, months=min(24, max(3, round(months * 2))), fine_yuan=fine)
    if tier.max_kind is SentenceKind.DETENTION:
        return Sentence(kind=SentenceKind.DETENTION, months=min(6, max(1, round(months))), fine_yuan=fine)
    if light and months < 6 and rng.random() < 0.65:
        return Sentence(kind=SentenceKind.DETENTION, months=min(6, max(1, round(months))), fine_yuan=fine)
    term = min(int(high), max(6, _court_months(rng, months)))
    return Sentence(kind=SentenceKind.FIXED_TERM, months=term, fine_yuan=fine)


def _court_months(rng: random.Random, months: float) -> int:
    """Whole months, rounded the way courts favour (一年六个月 more often than 一年五个月)."""
    if months < 12:
        return round(months)
    r = rng.random()
    if months < 36:
        return round(months) if r < 0.5 else 3 * round(months / 3)
    if months < 120:
        return 3 * round(months / 3) if r < 0.35 else 6 * round(months / 6)
    return 6 * round(months / 6) if r < 0.45 else 12 * round(months / 12)


def _life_or_death(rng: random.Random, person: Person, spec: ChargeSpec, tier: Tier) -> Sentence:
    """无期徒刑, or in a tier reaching 死刑 and without mitigation, sometimes 死缓 or 死刑."""
    property_penalty = spec.carries_fine
    kind = SentenceKind.LIFE
    if tier.max_kind is SentenceKind.DEATH and not person.has(C.SURRENDER) and person.role is not Role.ACCESSORY:
        r = rng.random()
        if r < 0.04:
            kind = SentenceKind.DEATH
        elif r < 0.30:
            kind = SentenceKind.DEATH_SUSPENDED
    return Sentence(kind=kind, political_rights_for_life=True, confiscation=property_penalty)


def _fine(rng: random.Random, priced: Priced, factor: float) -> int | None:
    if priced.fine_yuan is None or priced.tier.fine is FinePolicy.NONE:
        return None
    if priced.tier.fine is FinePolicy.OPTIONAL and rng.random() < 0.5:
        return None
    return _nice_yuan(priced.fine_yuan * factor * math.exp(rng.gauss(0.0, 0.25)))


def _nice_yuan(yuan: float) -> int:
    """Fines are round sums: thousands, then ten-thousands."""
    if yuan < 10_000:
        return max(1000, round(yuan, -3))
    if yuan < 200_000:
        return int(round(yuan / 5000) * 5000)
    return int(round(yuan, -4))


def _combine(rng: random.Random, sentences: list[Sentence]) -> Sentence:
    """决定执行 (刑法第69条): between the highest term and the sum; fines add up."""
    fines = [s.fine_yuan for s in sentences if s.fine_yuan]
    fine = sum(fines) if fines else None
    heavy = [s for s in sentences if s.kind in _HEAVY]
    if heavy:
        worst = max(heavy, key=lambda s: s.severity)
        return Sentence(**(worst.model_dump() | {"confiscation": any(s.confiscation for s in sentences)}))
    fixed = [s.months or 0 for s in sentences if s.kind is SentenceKind.FIXED_TERM]
    if fixed:
        kind, terms = SentenceKind.FIXED_TERM, fixed
        cap = 240 if sum(terms) < 420 else COMBINED_CAP_MONTHS[SentenceKind.FIXED_TERM]
    else:
        kind = SentenceKind.DETENTION
        terms = [s.months or 0 for s in sentences if s.kind is SentenceKind.DETENTION]
        cap = COMBINED_CAP_MONTHS[SentenceKind.DETENTION]
    highest = max(terms)
    upper = min(sum(terms), cap)
    share = 0.25 + 0.45 * rng.random()
    months = highest + share * (upper - highest)
    months = _court_months(rng, months) if kind is SentenceKind.FIXED_TERM else round(months)
    months = min(max(months, highest), upper)
    return Sentence(kind=kind, months=months, fine_yuan=fine)


def _probation(draft: Draft, person: Person, sentence: Sentence, form: SentenceForm, restricted: bool) -> Sentence:
    """缓刑 for 拘役 or 有期徒刑 ≤ 3 years, never for 累犯 (刑法第72、74条), by the signals courts weigh."""
    rng = draft.rng
    if sentence.kind not in (SentenceKind.FIXED_TERM, SentenceKind.DETENTION) or person.has(C.RECIDIVIST):
        return sentence
    months = sentence.months or 0
    if sentence.kind is SentenceKind.FIXED_TERM and months > 36:
        return sentence
    p = 0.7 if form is SentenceForm.PROBATION else 0.15
    if person.has(C.PLEA_AGREEMENT):
        p += 0.1
    if person.has(C.JUVENILE):
        p = 0.9
    elif restricted:
        p *= 0.25
    if months > 24:
        p *= 0.6
    k = draft.province.probation
    p = min(0.95, p * k / (1 - p + p * k))
    if rng.random() >= p:
        return sentence
    if sentence.kind is SentenceKind.DETENTION:
        period = min(12, max(2, months) + int(rng.random() * 5))
    else:
        extra = (0, 6, 12, 12, 24)[int(rng.random() * 5)]
        period = max(12, months + extra)
        period = min(60, 6 * math.ceil(period / 6))
    return Sentence(**(sentence.model_dump() | {"probation_months": period}))
