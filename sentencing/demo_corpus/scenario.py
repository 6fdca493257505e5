"""Drawing one synthetic case: who did what, how much, and which circumstances (量刑情节) apply.

The draft is plain data (slotted dataclasses, no validation) so that a million cases draw fast;
:mod:`sentencing.demo_corpus.outcome` then sentences it and :mod:`~sentencing.demo_corpus.render`
writes it. Every random draw goes through the case's own ``random.Random`` in a fixed order.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sentencing.case import (
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
from sentencing.demo_corpus.people import (
    NameBook,
    Weighted,
    add_days,
    between,
    birth_for_age,
    education,
    ethnicity,
    occupation,
    pick,
)
from sentencing.demo_corpus.world import ChargeProfile, Court, ProvinceProfile, World
from sentencing.sentence import Sentence

C = CircumstanceCode

# Circumstances in the order the court's reasoning discusses them (and the ground truth lists them).
CIRCUMSTANCE_ORDER: tuple[CircumstanceCode, ...] = (
    C.JUVENILE, C.ELDERLY, C.ATTEMPT, C.RECIDIVIST, C.PRIOR_RECORD, C.SURRENDER, C.CONFESSION,
    C.MERITORIOUS, C.MAJOR_MERITORIOUS, C.COURT_PLEA, C.PLEA_AGREEMENT, C.RESTITUTION, C.COMPENSATION,
    C.FORGIVENESS, C.RECONCILIATION,
)
VICTIMLESS = frozenset({
    "开设赌场", "帮助信息网络犯罪活动", "掩饰、隐瞒犯罪所得", "非法吸收公众存款", "容留他人吸毒", "容留卖淫",
    "非法持有毒品", "危险驾驶",
})
"""Charges with no individual victim to forgive: restitution is 退缴违法所得 there."""

JOINT_SIZE = Weighted([(2, 60.0), (3, 25.0), (4, 10.0), (5, 5.0)])
YEAR = Weighted([(2014, 4.0), (2015, 6.0), (2016, 9.0), (2017, 12.0), (2018, 14.0), (2019, 15.0),
                 (2020, 13.0), (2021, 12.0), (2022, 9.0), (2023, 6.0)])
PRIOR_CHARGES = ("盗窃", "诈骗", "故意伤害", "抢劫", "贩卖毒品", "寻衅滋事", "危险驾驶", "抢夺", "聚众斗殴")


@dataclass(slots=True)
class Offence:
    """One crime as committed, by one or several participants (共同犯罪)."""

    profile: ChargeProfile
    participants: list[Person] = field(default_factory=list)
    amount: int | None = None
    drugs: list[tuple[str, float]] = field(default_factory=list)
    injury: InjuryGrade | None = None
    injured: int = 0
    """People seriously injured (交通肇事)."""
    deaths: int = 0
    bac: float | None = None
    occurrences: int | None = None
    attempt: bool = False
    degree: str = ""
    start: dt.date = dt.date(2000, 1, 1)
    end: dt.date = dt.date(2000, 1, 1)
    victims: tuple[str, str] = ("", "")

    @property
    def joint(self) -> bool:
        return len(self.participants) > 1

    def quantities(self) -> Quantities:
        """The offence's quantities as the case model holds them."""
        return Quantities(
            amount_yuan=Measure(value=float(self.amount)) if self.amount is not None else None,
            drug_grams={name: Measure(value=grams) for name, grams in self.drugs},
            injuries=_injuries(self),
            occurrences=Measure(value=float(self.occurrences)) if self.occurrences else None,
            deaths=Measure(value=float(self.deaths)) if self.deaths else None,
            blood_alcohol_mg_per_100ml=Measure(value=self.bac) if self.bac is not None else None,
        )


def _injuries(o: Offence) -> list[Injury]:
    out: list[Injury] = []
    if o.injury is not None:
        out.append(Injury(grade=o.injury))
    if o.injured:
        out.append(Injury(grade=InjuryGrade.SERIOUS_2, count=o.injured))
    return out


@dataclass(slots=True)
class Prior:
    """A previous conviction (前科), the ground of 累犯 when released within five years."""

    charge: str
    sentenced: dt.date
    months: int
    released: dt.date


@dataclass(slots=True)
class Person:
    """One defendant of the draft."""

    name: str
    male: bool
    birth: dt.date
    age: int
    ethnicity: str
    education: str
    occupation: str
    role: Role = Role.SOLE
    offences: list[Offence] = field(default_factory=list)
    circumstances: list[CircumstanceCode] = field(default_factory=list)
    prior: Prior | None = None
    detained: dt.date = dt.date(2000, 1, 1)
    sentence: Sentence | None = None
    charge_sentences: list[Sentence] = field(default_factory=list)
    degrees: list[str] = field(default_factory=list)

    def has(self, code: CircumstanceCode) -> bool:
        return code in self.circumstances

    def circumstances_for(self, offence: Offence) -> list[CircumstanceCode]:
        """Circumstances that bear on one of the person's crimes (未遂 belongs to its crime)."""
        return [c for c in self.circumstances if c is not C.ATTEMPT or offence.attempt]

    def quantities(self) -> Quantities:
        """All of the person's quantities (the crimes of a multi-crime defendant never share a kind)."""
        if len(self.offences) == 1:
            return self.offences[0].quantities()
        merged: dict = {}
        for o in self.offences:
            for key, value in o.quantities():
                if value and not merged.get(key):
                    merged[key] = value
        return Quantities(**merged)

    def defendant(self, offence: Offence | None = None) -> Defendant:
        """The ground-truth defendant; for one ``offence``, the defendant as the guideline sees that crime."""
        offences = [offence] if offence is not None else self.offences
        codes = self.circumstances_for(offence) if offence is not None else self.circumstances
        return Defendant(
            name=self.name,
            charges=[Charge(name=o.profile.name) for o in offences],
            role=self.role if offence is None or offence.joint else Role.SOLE,
            circumstances=[Circumstance(code=c) for c in codes],
            quantities=offence.quantities() if offence is not None else self.quantities(),
            age=self.age,
        )


@dataclass(slots=True)
class Draft:
    """One case before it is written: the province, the crimes and the defendants."""

    index: int
    rng: random.Random
    province: ProvinceProfile
    year: int
    judged: dt.date
    names: NameBook
    offences: list[Offence] = field(default_factory=list)
    defendants: list[Person] = field(default_factory=list)
    court: Court | None = None
    serial: int = 0
    judge_factor: float = 1.0
    minimum_amount: Callable[[str, str], float | None] = lambda province, charge: None


def draw(
    world: World,
    rng: random.Random,
    index: int,
    charge_pick: Weighted,
    minimum_amount: Callable[[str, str], float | None] | None = None,
) -> Draft:
    """Draw a case's crimes, defendants and circumstances (not yet its sentences).

    ``minimum_amount(province, charge)`` is the province's 数额较大 threshold, when there is one.
    """
    province = world.provinces[int(rng.random() * len(world.provinces))]
    year = YEAR(rng)
    judged = dt.date(year, 1, 1) + dt.timedelta(days=int(rng.random() * 360))
    draft = Draft(index=index, rng=rng, province=province, year=year, judged=judged, names=NameBook(rng))
    if minimum_amount is not None:
        draft.minimum_amount = minimum_amount
    draft.judge_factor = math.exp(rng.gauss(0.0, 0.10))
    profile: ChargeProfile = charge_pick(rng)
    size = 1
    if rng.random() < profile.joint:
        size = JOINT_SIZE(rng)
    main = _offence(draft, profile, size)
    draft.offences.append(main)
    for person in main.participants:
        draft.defendants.append(person)
    # 数罪并罚: a defendant sometimes also committed a second crime alone.
    for second, p in world.combinations.get(profile.name, ()):
        for person in list(main.participants):
            if rng.random() < p and len(person.offences) == 1:
                other = _offence(draft, world.charge(second), 1, person=person, exclude=_kinds(main))
                draft.offences.append(other)
    for person in draft.defendants:
        _circumstances(draft, person)
    _roles(rng, main)
    return draft


def _kinds(o: Offence) -> set[str]:
    kinds = set()
    if o.amount is not None:
        kinds.add("amount")
    if o.occurrences:
        kinds.add("occurrences")
    if o.injury is not None or o.injured:
        kinds.add("injury")
    return kinds


def _offence(
    draft: Draft, profile: ChargeProfile, size: int, *, person: Person | None = None, exclude: set[str] | None = None
) -> Offence:
    rng = draft.rng
    o = Offence(profile=profile)
    exclude = exclude or set()
    scale = draft.province.amount
    q = profile.quantity
    if q == "amount":
        row = _weighted_row(rng, profile.tiers)
        _, lo, hi, degree = row
        lo, hi = lo * scale, hi * scale
        if row is profile.tiers[0]:
            # Below the province's 数额较大 threshold theft is no crime: nobody is tried for it.
            least = draft.minimum_amount(draft.province.province.code, profile.name)
            if least is not None and lo < least:
                lo, hi = least, max(hi, least * 3)
        o.amount = _round_amount(rng, math.exp(math.log(lo) + rng.random() * math.log(hi / lo)))
        o.degree = degree
    elif q == "drugs":
        drug = _weighted_row(rng, profile.drugs)[1]
        _, lo, hi = _weighted_row(rng, profile.grams)
        grams = math.exp(math.log(lo) + rng.random() * math.log(hi / lo))
        if drug == "氯胺酮":
            grams *= 10  # ketamine counts a tenth of methamphetamine (法释〔2016〕8号)
        o.drugs = [(drug, round(grams, 2))]
        if profile.name == "贩卖毒品" and rng.random() < 0.08:
            other = "海洛因" if drug != "海洛因" else "甲基苯丙胺"
            o.drugs.append((other, round(0.1 + rng.random() * 3, 2)))
    elif q == "injury":
        o.injury = _weighted_row(rng, profile.injuries)[1]
        if o.injury is InjuryGrade.DEATH:
            o.injury = None
            o.deaths = 1
    elif q == "alcohol":
        lo, hi = profile.alcohol or (80.0, 200.0)
        # Most drunk drivers are caught between 80 and 180 mg/100 ml.
        o.bac = round(lo + (hi - lo) * rng.random() ** 1.8, 1)
    elif q == "traffic":
        deaths = _weighted_row(rng, profile.deaths)[1]
        o.deaths = deaths
        if deaths == 0 or rng.random() < 0.1:
            o.injured = 1 if deaths else between(rng, 1, 3)
    if profile.occurrences and "occurrences" not in exclude and rng.random() < profile.occurrences[0]:
        o.occurrences = between(rng, profile.occurrences[1], profile.occurrences[2])
    if profile.attempt and rng.random() < profile.attempt:
        o.attempt = True
        o.occurrences = None
    if "injury" in exclude and (o.injury is not None):
        o.injury = None
    o.end = add_days(draft.judged, -between(rng, 45, 300))
    if o.occurrences or not profile.single_facts or rng.random() < 0.3:
        o.start = add_days(o.end, -between(rng, 20, 200))  # a period: 2019年1月至3月期间
    else:
        o.start = o.end  # one event on one day
    o.victims = (draft.names.victim(), draft.names.victim())
    if person is not None:
        # A second crime of the same defendant, committed before the arrest.
        if o.end >= person.detained:
            span = (o.end - o.start).days
            o.end = add_days(person.detained, -between(rng, 1, 60))
            o.start = add_days(o.end, -span)
        o.participants.append(person)
        person.offences.append(o)
        return o
    for _ in range(size):
        p = _person(draft, o)
        o.participants.append(p)
        p.offences.append(o)
    return o


def _weighted_row(rng: random.Random, rows: tuple) -> tuple:
    total = sum(r[0] for r in rows)
    x = rng.random() * total
    for r in rows:
        x -= r[0]
        if x < 0:
            return r
    return rows[-1]


def _round_amount(rng: random.Random, yuan: float) -> int:
    """Amounts as appraisals give them: exact below 10,000 yuan, then often rounded."""
    n = max(1, int(yuan))
    if n >= 100_000 and rng.random() < 0.6:
        return max(1000, round(n, -3))
    if n >= 10_000 and rng.random() < 0.5:
        return round(n, -2)
    return n


def _person(draft: Draft, offence: Offence) -> Person:
    rng = draft.rng
    crime_day = offence.start
    r = rng.random()
    if r < 0.03 and offence.profile.name not in ("危险驾驶", "交通肇事", "非法吸收公众存款", "职务侵占"):
        age = between(rng, 16, 17)
    elif r < 0.034:
        age = between(rng, 75, 79)
    else:
        age = min(74, 18 + int(rng.expovariate(1 / 14.0)))
    male = rng.random() < (0.55 if offence.profile.name in ("容留卖淫", "非法吸收公众存款") else 0.9)
    if offence.profile.name == "强奸":
        male = True
    return Person(
        name=draft.names.defendant(),
        male=male,
        birth=birth_for_age(rng, crime_day, age),
        age=age,
        ethnicity=ethnicity(rng),
        education=education(rng),
        occupation=occupation(rng),
        # Arrested within weeks, and at least a month before the judgment.
        detained=add_days(offence.end, between(rng, 0, min(40, max(0, (draft.judged - offence.end).days - 30)))),
    )


def _circumstances(draft: Draft, person: Person) -> None:
    rng = draft.rng
    main = person.offences[0]
    name = main.profile.name
    codes: set[CircumstanceCode] = set()
    if person.age < 18:
        codes.add(C.JUVENILE)
    elif person.age >= 75:
        codes.add(C.ELDERLY)
    if any(o.attempt for o in person.offences):
        codes.add(C.ATTEMPT)
    if person.age >= 20 and person.age < 75:
        r = rng.random()
        if r < 0.20:
            recent = r < 0.10
            person.prior = _prior(rng, person, main.start, recent=recent)
            if person.prior is not None:
                # A recidivist (累犯) has a prior record too; the guideline does not count it twice.
                codes.add(C.PRIOR_RECORD)
                if recent:
                    codes.add(C.RECIDIVIST)
    surrender = {"交通肇事": 0.45, "故意伤害": 0.22, "危险驾驶": 0.06}.get(name, 0.12)
    if rng.random() < surrender:
        codes.add(C.SURRENDER)
    elif rng.random() < 0.85:
        codes.add(C.CONFESSION)
    plea = 0.72 if draft.year >= 2019 else (0.25 if draft.year >= 2017 else 0.0)
    if rng.random() < plea:
        codes.add(C.PLEA_AGREEMENT)
    elif rng.random() < 0.35:
        codes.add(C.COURT_PLEA)
    r = rng.random()
    if r < (0.08 if main.profile.quantity == "drugs" else 0.03):
        codes.add(C.MERITORIOUS)
    elif r > 0.997:
        codes.add(C.MAJOR_MERITORIOUS)
    kind = main.profile.compensable
    if kind == "restitution" and not main.attempt:
        if rng.random() < 0.38:
            codes.add(C.RESTITUTION)
            if name not in VICTIMLESS and rng.random() < 0.5:
                codes.add(C.FORGIVENESS)
    elif kind == "compensation":
        r = rng.random()
        if r < 0.04:
            codes.add(C.RECONCILIATION)
        elif r < 0.55:
            codes.add(C.COMPENSATION)
            if rng.random() < 0.75:
                codes.add(C.FORGIVENESS)
        elif r < 0.59:
            codes.add(C.FORGIVENESS)
    person.circumstances = [c for c in CIRCUMSTANCE_ORDER if c in codes]


def _prior(rng: random.Random, person: Person, before: dt.date, *, recent: bool) -> Prior | None:
    """A prior conviction released within five years (累犯) or long ago (前科), committed as an adult.

    None when the person is too young for such a past (累犯 needs both crimes at 18 or older).
    """
    months = between(rng, 6, 36)
    if recent:
        released = add_days(before, -between(rng, 60, 1700))
    else:
        released = add_days(before, -between(rng, 1900, 4000))
    sentenced = add_days(released, -months * 30 + between(rng, 0, 20))
    adult = add_days(person.birth, 19 * 366)
    if sentenced < adult:
        shift = (adult - sentenced).days
        sentenced, released = add_days(sentenced, shift), add_days(released, shift)
        if (before - released).days < 60 or (not recent and (before - released).days < 1900):
            return None
    return Prior(charge=pick(rng, PRIOR_CHARGES), sentenced=sentenced, months=months, released=released)


def _roles(rng: random.Random, offence: Offence) -> None:
    """主犯/从犯/胁从犯 in a joint crime: the first participant leads; the rest are mostly accessories."""
    people = offence.participants
    if len(people) < 2:
        return
    people[0].role = Role.PRINCIPAL
    for p in people[1:]:
        r = rng.random()
        p.role = Role.PRINCIPAL if r < 0.35 else (Role.COERCED if r > 0.96 else Role.ACCESSORY)

