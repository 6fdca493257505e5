"""The sentencing guideline (量刑指导意见) as explainable arithmetic: one home for it.

(case, defendant) → statutory tier (法定刑幅度) → starting point (量刑起点) → baseline (基准刑)
→ first-tier circumstances (multiplied) → second-tier circumstances (同向相加、逆向相减) → clamp to
the tier (unless 减轻 applies) → 数罪并罚 (art. 69) → the 20% discretion band → a range, the
custody form and a fine. Every number comes from the catalogue (:mod:`sentencing.charges`);
every step is recorded with its legal basis, so the result explains itself.

It runs per defendant in the demo-corpus generator, the feature extractor, training and every
request, so it is built for speed without changing a result: whatever the catalogue fixes (tier
bounds, thresholds per province, rule texts, the priced circumstances of each combination, the
probation reasoning) is worked out once per catalogue (:class:`_Plan`), and the result models are
built from already-valid values without re-validation (:func:`_model`). tests/test_guideline_speed.py
holds every result identical to the original implementation; benchmarks/bench_guideline.py times both.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal, NamedTuple
from weakref import WeakKeyDictionary

from pydantic import BaseModel, Field

from sentencing.case import (
    AggravationCode,
    Case,
    CircumstanceCode,
    Defendant,
    InjuryGrade,
    Quantities,
    Role,
    trusted,
)
from sentencing.charges import (
    ChargeCatalogue,
    ChargeSpec,
    Condition,
    FinePolicy,
    FineRule,
    Tier,
    default_catalogue,
)
from sentencing.sentence import COMBINED_CAP_MONTHS, SentenceForm, SentenceKind, format_duration

Stage = Literal[
    "tier", "starting_point", "baseline", "first_tier", "second_tier", "clamp", "combine", "discretion", "form"
]

_STAGE_LABELS = {
    "tier": "法定刑幅度",
    "starting_point": "量刑起点",
    "baseline": "基准刑",
    "first_tier": "第一层次调节",
    "second_tier": "第二层次调节",
    "clamp": "法定刑限制",
    "combine": "数罪并罚",
    "discretion": "宣告刑幅度",
    "form": "刑罚执行方式",
}


class GuidelineStep(BaseModel):
    """One step of the arithmetic: the rule applied, its legal basis and the running value."""

    stage: Stage
    rule: str
    basis: str
    circumstance: CircumstanceCode | None = None
    ratio: float | None = None
    months: float | None = None
    """Months added (negative: removed) by this step."""
    value_months: float | None = None
    """The running value after this step (None once the outcome is 无期徒刑/死刑)."""
    charge: str | None = None


class GuidelineWarning(BaseModel):
    """Something the calculation could not settle from the input; each one widens the range."""

    code: str
    field: str | None = None
    message: str


class StatutoryRange(BaseModel):
    charge: str
    article: str
    tier_label: str
    min_months: int | None
    max_months: int | None
    min_kind: SentenceKind
    max_kind: SentenceKind


class ChargeCalculation(BaseModel):
    charge: str
    statutory: StatutoryRange
    starting_point_months: float | None
    baseline_months: float | None
    adjusted_months: float | None
    kind: SentenceKind
    steps: list[GuidelineStep]
    derived: bool = False
    """The starting point is derived from the statutory tier, not a guideline clause."""
    recognised: bool = True
    fine_yuan: int | None = None
    mitigation: bool = False
    """A statutory mitigation (减轻, art. 63) applies: the term may go below the tier floor."""


class GuidelineResult(BaseModel):
    defendant: str
    charges: list[str]
    statutory: StatutoryRange | None
    """The statutory tier of the most serious charge."""
    charge_results: list[ChargeCalculation]
    low_months: float | None
    point_months: float | None
    high_months: float | None
    kind: SentenceKind
    form: SentenceForm
    probation_eligible: bool
    fine_yuan: int | None
    steps: list[GuidelineStep]
    warnings: list[GuidelineWarning] = Field(default_factory=list)
    ruleset_version: str
    band: float = 0.0
    """Half-width of the range as a share of the point (the 20% discretion band, widened by warnings)."""

    @property
    def term_months(self) -> int:
        """The point as a CAIL term label (months; −1 life; −2 death)."""
        if self.kind in (SentenceKind.DEATH, SentenceKind.DEATH_SUSPENDED):
            return -2
        if self.kind is SentenceKind.LIFE:
            return -1
        return round(self.point_months or 0)

    @property
    def unit_outcome(self) -> bool:
        """The result for a unit defendant (被告单位): a fine alone, which the engine gives no person."""
        return self.kind is SentenceKind.FINE_ONLY

    def explain_text(self) -> str:
        """The calculation as readable Chinese, step by step."""
        who = "被告单位" if self.unit_outcome else "被告人"
        lines = [f"{who}{self.defendant}：{'、'.join(c + '罪' for c in self.charges) or '（无罪名）'}"]
        for i, step in enumerate(self.steps, 1):
            label = _STAGE_LABELS[step.stage]
            change = ""
            if step.months is not None and step.stage not in ("starting_point", "tier", "discretion"):
                change = f"（{step.months:+.1f}个月）"
            value = f" → {months_text(step.value_months)}" if step.value_months is not None else ""
            lines.append(f"{i}. 【{label}】{step.rule}{change}{value}。依据：{step.basis}")
        lines.append("结论：" + self.summary_text())
        for w in self.warnings:
            lines.append(f"提示（{w.code}）：{w.message}")
        lines.append(f"规则集版本：{self.ruleset_version}")
        return "\n".join(lines)

    def summary_text(self) -> str:
        if self.kind in (SentenceKind.LIFE, SentenceKind.DEATH, SentenceKind.DEATH_SUSPENDED):
            text = f"建议判处{self.kind.label}"
        elif self.unit_outcome:
            text = "建议对被告单位判处罚金"
        elif self.point_months is None:
            text = "无法计算刑期"
        else:
            text = (
                f"建议判处{self.kind.label}{months_text(self.point_months)}"
                f"（幅度{months_text(self.low_months)}至{months_text(self.high_months)}）"
            )
            text += (
                "，可适用缓刑"
                if self.form is SentenceForm.PROBATION
                else "，建议实刑"
                if self.form is SentenceForm.CUSTODY
                else ""
            )
        if self.fine_yuan:
            text += f"，并处罚金约人民币{self.fine_yuan}元"
        return text



def months_text(months: float | None) -> str:
    """Months as a judgment writes them (``一年六个月``); under one month as a decimal (``0.3个月``)."""
    if months is None:
        return "—"
    whole = round(months)
    if whole < 1:
        return f"{months:.1f}个月"
    text = _DURATION_TEXT.get(whole)
    if text is None:
        text = format_duration(whole)
        if whole <= 1200:  # the terms that recur; a pre-clamp value can be any size
            _DURATION_TEXT[whole] = text
    return text


_DURATION_TEXT: dict[int, str] = {}
"""format_duration by whole months: pure, and the same few hundred values recur."""


def life_rests_on_deaths(result: GuidelineResult) -> bool:
    """Whether the result's 无期徒刑 comes from a charge whose calculation added months for deaths.

    In the tiers of intentional violence that reach 死刑, each death beyond the first adds six years
    (the catalogue's derived increment), so that a second death with no mitigation reaches life, as
    the guideline's own reservation says (依法应当判处无期徒刑以上刑罚的除外); a life reached by a
    derived amount increment is another matter (training.predictor.defer_to_guideline_life).
    """
    prefix = _QUANTITY_LABELS["deaths"]
    return any(
        cr.kind is SentenceKind.LIFE and any(
            st.stage == "baseline" and (st.months or 0.0) > 0.0 and st.rule.startswith(prefix) for st in cr.steps)
        for cr in result.charge_results
    )


def undetermined_tiers(result: GuidelineResult, catalogue: ChargeCatalogue,
                       defendant: Defendant | None = None) -> list[tuple[str, str]]:
    """(charge, message) for each charge whose statutory tier no fact decided between it and another.

    A tier with no condition the facts can meet (``情节较轻的``, ``情节严重的``, ``数额巨大的`` of a charge
    with no amount standard in the catalogue) can be neither selected nor ruled out: the tier used
    is then the article's first (or the basic one), or the heaviest the quantities reach, and its
    range may be the wrong one (挪用资金 of 20 million yuan: 数额巨大 by amount, 数额特别巨大 has no
    standard). A statement about a result, so the calculation is unchanged.
    A tier the prosecutor stated (``Charge.tier`` of ``defendant``) is decided: nothing is said of it.
    """
    out: list[tuple[str, str]] = []
    for cr in _undecided(result, catalogue, defendant):
        if message := _open_tiers(catalogue, cr.charge, cr.statutory.tier_label):
            out.append((cr.charge, message))
    return out


def undetermined_bounds(result: GuidelineResult, catalogue: ChargeCatalogue,
                        defendant: Defendant | None = None) -> tuple[bool, bool]:
    """Whether the tiers :func:`undetermined_tiers` leaves open could lower the statutory floor, and
    whether they could raise the ceiling. 组织卖淫 priced in its basic tier (five to ten years) with
    情节严重 (ten years or more) open has a sure floor of five years and an open ceiling; 故意杀人
    in 故意杀人的 (ten years or more) with 情节较轻 (three to ten) open, the reverse."""
    lower = higher = False
    for cr in _undecided(result, catalogue, defendant):
        picked, open_tiers = _open_tier_list(catalogue, cr.charge, cr.statutory.tier_label)
        lower = lower or any(t.floor_months < picked.floor_months for t in open_tiers)
        higher = higher or any(t.ceiling_months > picked.ceiling_months for t in open_tiers)
    return lower, higher


def _undecided(result: GuidelineResult, catalogue: ChargeCatalogue,
               defendant: Defendant | None) -> list[ChargeCalculation]:
    """The result's recognised charges whose tier the prosecutor did not state."""
    stated = _stated_tiers(defendant) if defendant is not None else None
    decided = {spec.name for name, (label, _why) in stated.items()
               if (spec := catalogue.resolve(name)) is not None and any(t.label == label for t in spec.tiers)
               } if stated else ()
    return [cr for cr in result.charge_results if cr.charge not in decided and cr.recognised]


@lru_cache(maxsize=4096)
def _open_tier_list(catalogue: ChargeCatalogue, charge: str, tier_label: str) -> tuple[Tier | None, tuple[Tier, ...]]:
    """(the tier used, the tiers no fact can rule out instead of it); (None, ()) when none is open."""
    spec = catalogue.resolve(charge)
    if spec is None or len(spec.tiers) < 2:
        return None, ()
    chosen = next((i for i, t in enumerate(spec.tiers) if t.label == tier_label), None)
    if chosen is None:
        return None, ()
    # Open: a tier with no condition, other than the basic one. When facts chose a tier above the basic
    # one, only heavier open tiers could still apply (the heaviest tier reached is the one).
    picked = spec.tiers[chosen]
    floor = (picked.ceiling_months, picked.floor_months) if chosen != spec.default_tier else (-1.0, -1.0)
    return picked, tuple(t for i, t in enumerate(spec.tiers)
                         if i not in (chosen, spec.default_tier) and not t.when
                         and (t.ceiling_months, t.floor_months) > floor)


@lru_cache(maxsize=4096)
def _open_tiers(catalogue: ChargeCatalogue, charge: str, tier_label: str) -> str | None:
    picked, open_tiers = _open_tier_list(catalogue, charge, tier_label)
    if not open_tiers:
        return None
    others = "、".join(f"“{t.label}”（{tier_text(t)}）" for t in open_tiers)
    return (f"{catalogue.resolve(charge).label}：法定刑幅度按“{tier_label}”（{tier_text(picked)}）计算；另有{others}，"
            "其适用取决于事实未能认定的情节或数额标准，请核对；认定适用的，可在请求中写明该幅度（tiers）")


def _percent(share: float) -> str:
    text = _PERCENT_TEXT.get(share)
    if text is None:
        text = f"{share:.0%}"
        if len(_PERCENT_TEXT) < 1024:
            _PERCENT_TEXT[share] = text
    return text


_PERCENT_TEXT: dict[float, str] = {}


# --------------------------------------------------------------------------- building results
#
# The results are built from values this module computed, already of the field types, without
# pydantic's validation (about 2 µs a model, a dozen models a defendant). Each model records as
# "set" exactly the fields the validating constructor was given (``model_dump(exclude_unset=True)``);
# tests/test_guideline_speed.py holds every result identical to the original validated build.

def _given(*names: str) -> frozenset[str]:
    return frozenset(names)


_BASIC = _given("stage", "rule", "basis")
_VALUED = _BASIC | {"value_months"}
_OF_CHARGE = _BASIC | {"charge"}
_VALUED_OF_CHARGE = _VALUED | {"charge"}
_MOVED_OF_CHARGE = _VALUED_OF_CHARGE | {"months"}
_MOVED = _VALUED | {"months"}
_DISCRETION = _VALUED | {"ratio"}
_PRICED = frozenset(GuidelineStep.model_fields)
_ALL_WARNING = frozenset(GuidelineWarning.model_fields)
_ALL_STATUTORY = frozenset(StatutoryRange.model_fields)
_ALL_CALCULATION = frozenset(ChargeCalculation.model_fields)
_ALL_RESULT = frozenset(GuidelineResult.model_fields)


def _step(
    given: frozenset[str],
    stage: Stage,
    rule: str,
    basis: str,
    circumstance: CircumstanceCode | None = None,
    ratio: float | None = None,
    months: float | None = None,
    value_months: float | None = None,
    charge: str | None = None,
) -> GuidelineStep:
    return trusted(
        GuidelineStep,
        {
            "stage": stage,
            "rule": rule,
            "basis": basis,
            "circumstance": circumstance,
            "ratio": ratio,
            "months": months,
            "value_months": value_months,
            "charge": charge,
        },
        given,
    )


_Warning = tuple[str, str | None, str]
"""(code, field, message) of a :class:`GuidelineWarning`, kept as a tuple until the result is built."""


def _warn(warnings: list[_Warning], warning: _Warning) -> None:
    """Record a warning once (the list is short: a linear check is the cheapest)."""
    if warning not in warnings:
        warnings.append(warning)


def _warning_models(warnings: list[_Warning]) -> list[GuidelineWarning]:
    return [
        trusted(GuidelineWarning, {"code": code, "field": field_, "message": message}, _ALL_WARNING)
        for code, field_, message in warnings
    ]


# --------------------------------------------------------------------------- facts

_RANK = {grade: i for i, grade in enumerate(InjuryGrade)}
_RANK_OF_ID = {id(grade): i for grade, i in _RANK.items()}  # an Enum hashes in Python, an id in C
_LIGHT_2 = _RANK[InjuryGrade.LIGHT_2]


_NO_AGGRAVATIONS: dict[str, float | None] = {f"aggravation:{code.value}": None for code in AggravationCode}


def aggravation_text(code: AggravationCode) -> str:
    """How a tier's aggravation condition reads in the calculation (``具有法定加重情节“入户抢劫”``)."""
    return f"具有法定加重情节“{code.label}”"


class _Facts:
    """The quantities of one defendant, or of one of their charges (``Charge.quantities``), on the scales
    the catalogue uses (``values[quantity]``), with the defendant's aggravations."""

    __slots__ = ("amount_yuan", "unknown_drugs", "values")

    def __init__(self, defendant: Defendant, plan: _Plan, quantities: Quantities | None = None) -> None:
        q = defendant.quantities if quantities is None else quantities
        amount = q.amount_yuan.value if q.amount_yuan else None
        deaths = q.deaths.value if q.deaths else None
        drug_grams = injury = injured = None
        unknown: list[str] = []
        if q.drug_grams:
            total = 0.0
            for drug, measure in q.drug_grams.items():
                factor = plan.drug_factor(drug)
                if factor is None:
                    unknown.append(drug)
                else:
                    total += measure.value * factor
            if len(unknown) < len(q.drug_grams):
                drug_grams = total
        if q.injuries:
            worst = max(q.injuries, key=lambda i: _RANK_OF_ID[id(i.grade)]).grade
            injury = float(_RANK_OF_ID[id(worst)])
            injured = float(sum(i.count for i in q.injuries if _RANK_OF_ID[id(i.grade)] >= _LIGHT_2))
            if worst is InjuryGrade.DEATH:
                dead = sum(i.count for i in q.injuries if i.grade is InjuryGrade.DEATH)
                deaths = max(deaths or 0, dead)
        self.amount_yuan = amount
        self.unknown_drugs = unknown
        self.values: dict[str, float | None] = {
            "amount_yuan": amount,
            "drug_grams": drug_grams,
            "injury": injury,
            "injured_people": injured,
            "deaths": deaths,
            "occurrences": q.occurrences.value if q.occurrences else None,
            "blood_alcohol": q.blood_alcohol_mg_per_100ml.value if q.blood_alcohol_mg_per_100ml else None,
            **_NO_AGGRAVATIONS,
        }
        for a in defendant.aggravations:
            self.values[f"aggravation:{a.code.value}"] = 1.0


_QUANTITY_FIELDS = {
    "amount_yuan": "quantities.amount_yuan",
    "drug_grams": "quantities.drug_grams",
    "injury": "quantities.injuries",
    "injured_people": "quantities.injuries",
    "deaths": "quantities.deaths",
    "occurrences": "quantities.occurrences",
    "blood_alcohol": "quantities.blood_alcohol_mg_per_100ml",
}
_QUANTITY_LABELS = {
    "amount_yuan": "犯罪数额",
    "drug_grams": "毒品数量",
    "injury": "伤情",
    "injured_people": "受伤人数",
    "deaths": "死亡人数",
    "occurrences": "次数",
    "blood_alcohol": "血液酒精含量",
}

_STAGE_ORDER = (CircumstanceCode.PREPARATION, CircumstanceCode.ATTEMPT, CircumstanceCode.DISCONTINUATION)
_FIRST_TIER = (
    CircumstanceCode.JUVENILE,
    CircumstanceCode.ELDERLY,
    CircumstanceCode.DISABILITY,
    CircumstanceCode.PREPARATION,
    CircumstanceCode.ATTEMPT,
    CircumstanceCode.DISCONTINUATION,
)
_SECOND_TIER = (
    CircumstanceCode.SURRENDER,
    CircumstanceCode.CONFESSION,
    CircumstanceCode.COURT_PLEA,
    CircumstanceCode.MERITORIOUS,
    CircumstanceCode.MAJOR_MERITORIOUS,
    CircumstanceCode.RESTITUTION,
    CircumstanceCode.COMPENSATION,
    CircumstanceCode.FORGIVENESS,
    CircumstanceCode.RECONCILIATION,
    CircumstanceCode.RECIDIVIST,
    CircumstanceCode.PRIOR_RECORD,
    CircumstanceCode.VULNERABLE_VICTIM,
    CircumstanceCode.DISASTER_TIME,
)
_PLEA_GROUP = (
    CircumstanceCode.SURRENDER,
    CircumstanceCode.CONFESSION,
    CircumstanceCode.COURT_PLEA,
    CircumstanceCode.RESTITUTION,
    CircumstanceCode.COMPENSATION,
    CircumstanceCode.FORGIVENESS,
    CircumstanceCode.RECONCILIATION,
)
_PLEA_HEAVY = (  # 自首、重大坦白、退赃退赔、赔偿谅解、刑事和解 (ordinary 坦白 is not among them)
    CircumstanceCode.SURRENDER,
    CircumstanceCode.RESTITUTION,
    CircumstanceCode.COMPENSATION,
    CircumstanceCode.FORGIVENESS,
    CircumstanceCode.RECONCILIATION,
)
_REMORSE = (
    CircumstanceCode.SURRENDER,
    CircumstanceCode.CONFESSION,
    CircumstanceCode.PLEA_AGREEMENT,
    CircumstanceCode.RESTITUTION,
    CircumstanceCode.COMPENSATION,
    CircumstanceCode.FORGIVENESS,
    CircumstanceCode.RECONCILIATION,
)
_LENIENT_FIRST = (
    CircumstanceCode.JUVENILE,
    CircumstanceCode.ATTEMPT,
    CircumstanceCode.ELDERLY,
    CircumstanceCode.PREPARATION,
    CircumstanceCode.DISCONTINUATION,
)


# --------------------------------------------------------------------------- the plan: what the catalogue fixes


def tier_text(tier: Tier) -> str:
    """A tier's range as the law writes it (``有期徒刑三年至有期徒刑十年``, ``拘役至有期徒刑三年``)."""
    if tier.floor == "death":
        return "死刑"
    floor = {"surveillance": "管制", "detention": "拘役", "fine_only": "单处罚金", "life": "无期徒刑"}.get(  # type: ignore[call-overload]
        tier.floor)
    ceiling = {"detention": "拘役", "life": "无期徒刑", "death": "死刑"}.get(tier.ceiling)  # type: ignore[call-overload]
    lo = floor or f"有期徒刑{format_duration(tier.floor)}"  # type: ignore[arg-type]
    hi = ceiling or f"有期徒刑{format_duration(tier.ceiling)}"  # type: ignore[arg-type]
    return f"{lo}至{hi}"


class _Increment(NamedTuple):
    """增加刑罚量 of a tier, its base resolved for the province and its rule text prepared."""

    quantity: str
    base: float
    per: float
    months: float
    max_months: float | None
    source: str
    prefix: str
    suffix: str


class _TierPlan:
    """One statutory tier of one charge in one province: bounds, texts and increments, worked out once."""

    def __init__(self, plan: _Plan, spec: ChargeSpec, index: int, province: str | None) -> None:
        catalogue, method = plan.catalogue, plan.method
        tier = spec.tiers[index]
        self.tier = tier
        self.text = tier_text(tier)

        def bound(cond: Condition) -> float:
            if cond.value is not None:
                return cond.value
            return catalogue.threshold(spec, cond.threshold, province).value  # type: ignore[arg-type]

        def quantity_cond(cond: Condition) -> tuple[str, float, str]:
            if cond.quantity == "injury":
                assert cond.grade is not None
                return "injury", float(_RANK[cond.grade]), f"伤情达到{cond.grade.label}"
            b = bound(cond)
            name = f"{cond.threshold}（{b:g}）" if cond.threshold else f"{b:g}"
            return cond.quantity, b, f"{_QUANTITY_LABELS[cond.quantity]}达到{name}"  # type: ignore[return-value]

        conds: list[tuple[str, float, str]] = []
        also: list[tuple[str, float] | None] = []
        for cond in tier.when:
            if cond.aggravation is None:
                conds.append(quantity_cond(cond))
                also.append(None)
                continue
            key, text = f"aggravation:{cond.aggravation.value}", aggravation_text(cond.aggravation)
            if cond.quantity is None:
                conds.append((key, 1.0, text))
                also.append(None)
            else:
                quantity, b, quantity_text = quantity_cond(cond)
                conds.append((key, 1.0, f"{text}且{quantity_text}"))
                also.append((quantity, b))
        self.conds = tuple(conds)
        """(quantity, bound, text): the tier applies when the quantity reaches the bound (伤情: its rank)…"""
        self.also = tuple(also) if any(also) else None
        """…and, for a condition of a fact and a quantity together, this (quantity, bound) as well."""

        # 量刑起点
        self.derived = spec.derived or tier.derived
        lo, hi = tier.start
        self.start = tier.start_point if tier.start_point is not None else lo + method.start_position * (hi - lo)
        basis = tier.start_source
        if tier.start_point is None and hi > lo:
            basis += f"；{method.start_position_source}"
        if hi > lo:
            rule = f"在{months_text(lo)}至{months_text(hi)}幅度内确定量刑起点"
        else:
            rule = f"量刑起点为{months_text(lo)}"
        if self.derived:
            rule += "（推定：指导意见未规定该罪，起点由法定刑幅度推定）"
        self.start_rule, self.start_basis = rule, basis

        # 基准刑
        increments: list[_Increment] = []
        for inc in tier.increments:
            if inc.above is not None:
                base = inc.above
            elif inc.above_threshold is not None:
                base = catalogue.threshold(spec, inc.above_threshold, province).value
            elif inc.quantity == "injured_people":
                base = 1.0
            else:
                base = next(
                    (bound(c) for c in tier.when if c.quantity == inc.quantity and c.quantity != "injury"), 0.0
                )
            increments.append(
                _Increment(
                    inc.quantity,
                    base,
                    inc.per,
                    inc.months,
                    inc.max_months,
                    inc.source,
                    f"{_QUANTITY_LABELS[inc.quantity]}超出{base:g}的部分 ",
                    f"，每{inc.per:g}增加{inc.months:g}个月",
                )
            )
        self.increments = tuple(increments)
        self.no_increment_basis = spec.guideline or spec.statutory_source

        # 法定刑限制
        self.floor = tier.floor_months
        self.ceiling = tier.ceiling_months
        lower = spec.tiers[index - 1] if index > 0 else None
        self.mitigated_floor = (
            self.floor
            if self.floor <= 1
            else (lower.floor_months if lower is not None else (1.0 if tier.allows_detention else 6.0))
        )
        self.allows_detention = tier.allows_detention
        self.no_fixed_term = tier.no_fixed_term
        self.floor_kind = tier.min_kind
        self.unattributed_warning = (
            f"{spec.label}：被告人另有其他罪名，已知的死亡、重伤结果可能由其他犯罪造成，未据此适用“{tier.label}”"
            f"（{self.text}）；认定适用的，可在请求中写明该幅度（tiers）")
        self.may_exceed_fixed_term = tier.max_kind in (SentenceKind.LIFE, SentenceKind.DEATH)
        self.life_basis = f"{spec.statutory_source}；{method.life_source}"
        self.clamp_basis = spec.statutory_source
        self.mitigated_clamp_basis = f"{spec.statutory_source}；刑法第63条"
        self.statutory = {
            "article": spec.article,
            "tier_label": tier.label,
            "min_months": tier.min_months,
            "max_months": tier.max_months,
            "min_kind": tier.min_kind,
            "max_kind": tier.max_kind,
        }
        self.unlisted_rule = f"{spec.name}罪不在罪名目录中：按{tier.label}（{self.text}）估计"
        fine = spec.fine
        self.fine = fine if spec.carries_fine and tier.fine is not FinePolicy.NONE else None


class _ChargePlan:
    """One charge in one province: its tiers and the conditions and warnings that choose among them."""

    def __init__(self, plan: _Plan, spec: ChargeSpec, province: str | None) -> None:
        self.spec = spec
        self.intentional = spec.intentional
        self.violent = spec.family.value == "violence"
        self.restricted = spec.probation == "restricted"
        self.tiers = tuple(_TierPlan(plan, spec, i, province) for i in range(len(spec.tiers)))
        default = spec.default_tier
        basic = spec.tiers[default]
        self.default = default
        self.default_reason = "基本犯罪构成" if not spec.derived else "条文首先规定的法定刑幅度"
        selecting = set(spec.key_quantities) or {c.quantity for c in basic.when if c.quantity is not None}
        self.selecting = tuple(sorted(selecting))
        if selecting:
            fields = ", ".join(_QUANTITY_FIELDS[q] for q in self.selecting)
            self.missing_warning = (
                "missing_quantity",
                _QUANTITY_FIELDS[self.selecting[0]],
                f"{spec.label}：缺少选择法定刑幅度所需的事实（{fields}），按“{basic.label}”计算，实际可能更重",
            )
        basic_conds = self.tiers[default].conds
        self.basic_conds = basic_conds
        if basic_conds:
            conds = "或".join(text for _, _, text in basic_conds)
            self.below_warning = (
                "below_threshold",
                _QUANTITY_FIELDS[basic.when[0].quantity],
                f"{spec.label}：已知事实未达到“{basic.label}”的标准（{conds}），可能另有入罪依据（如入户、扒窃、情节），按该档计算",
            )
        self._tier_rules: dict[tuple[int, str], str] = {}
        self.tier_index = {t.label: i for i, t in enumerate(spec.tiers)}
        self.prices_amount = spec.prices_amount  # an attribute: read on every calculation

    def reaches_basic(self, values: dict[str, float | None]) -> bool:
        """Whether a quantity reaches a condition of the basic tier (数额较大…), which then the facts select."""
        return any((value := values[q]) is not None and value >= b for q, b, _ in self.basic_conds)

    def tier_rule(self, index: int, reason: str) -> str:
        key = (index, reason)
        rule = self._tier_rules.get(key)
        if rule is None:
            tier = self.tiers[index]
            rule = f"{self.spec.label}：{reason}，适用“{tier.tier.label}”（{tier.text}）"
            if len(self._tier_rules) < 1024:
                self._tier_rules[key] = rule
        return rule


class _Settled:
    """The defendant's circumstances after contradictions are settled, with the warnings that settled them.

    One per combination of circumstances, age and role (shared by every defendant who has it), it
    also keeps what is priced from it: the adjustments per kind of charge and the probation form.
    """

    __slots__ = ("adjustments", "codes", "forms", "juvenile_under16", "role", "warnings")

    def __init__(
        self,
        codes: frozenset[CircumstanceCode],
        juvenile_under16: bool,
        role: Role,
        warnings: tuple[_Warning, ...],
    ) -> None:
        self.codes = codes
        self.juvenile_under16 = juvenile_under16
        self.role = role
        self.warnings = warnings
        self.adjustments: dict[tuple[bool, bool], _Adjustments] = {}
        self.forms: dict[tuple[bool, bool], tuple[SentenceForm, bool, str, str]] = {}


class _Part(NamedTuple):
    """One second-tier adjustment: its share of the first-tier result and its rule text."""

    rule: str
    rule_at_least: str | None
    basis: str
    ratio: float
    circumstance: CircumstanceCode | None
    min_months: float | None


class _Adjustments(NamedTuple):
    """量刑情节 priced for one charge: first-tier factors, second-tier parts, notes and 减轻."""

    first: tuple[tuple[str, str, float, CircumstanceCode | None], ...]
    first_mitigation: bool
    notes: tuple[tuple[CircumstanceCode, str, str], ...]
    parts: tuple[_Part, ...]
    second_mitigation: bool


class _Plan:
    """Everything about a catalogue that does not depend on the defendant's quantities, built on demand.

    The catalogue is immutable after loading, so each entry is computed once: charge resolution,
    each charge's tiers per province, the priced circumstances per combination, the probation
    reasoning per combination. Entries are small; the tables that grow with input variety are capped.
    """

    _CAP = 8192

    def __init__(self, catalogue: ChargeCatalogue) -> None:
        self.catalogue = catalogue
        self.method = catalogue.method
        self._resolved: dict[tuple[str, ...], tuple[tuple[str, ChargeSpec | None, str], ...]] = {}
        self._charges: dict[tuple[int, str | None], _ChargePlan] = {}
        self._fallbacks: dict[str, ChargeSpec] = {}
        self._settled: dict[tuple, _Settled] = {}
        self._drugs: dict[str, float | None] = {}

    # -- lookups

    def resolve(self, names: list[str]) -> tuple[tuple[str, ChargeSpec | None, str], ...]:
        """(given, spec, key) for each charge, as :meth:`ChargeCatalogue.resolve_all` resolves them."""
        key = tuple(names)
        out = self._resolved.get(key)
        if out is None:
            out = tuple(
                (given, spec, spec.name if spec else given.strip().removesuffix("罪"))
                for given, spec in self.catalogue.resolve_all(names)
            )
            self._store(self._resolved, key, out)
        return out

    def charge(self, spec: ChargeSpec, province: str | None) -> _ChargePlan:
        plan = self._charges.get((id(spec), province))
        if plan is None:
            # Provinces without their own thresholds for the charge share the national plan.
            own = self.catalogue.provinces.get(province) if province else None
            effective = province if own and spec.name in own else None
            plan = self._charges.get((id(spec), effective))
            if plan is None:
                plan = self._charges[(id(spec), effective)] = _ChargePlan(self, spec, effective)
            self._charges[(id(spec), province)] = plan
        return plan

    def fallback(self, name: str) -> ChargeSpec:
        """The stand-in charge for a name the catalogue does not know: the catalogue's fallback tier."""
        spec = self._fallbacks.get(name)
        if spec is None:
            fallback = self.catalogue.fallback
            assert fallback is not None
            spec = ChargeSpec(
                name=name,
                article="?",
                family="other",
                tiers=[fallback],
                derived=True,
                statutory_source="未收录：" + fallback.start_source,
            )
            if len(self._fallbacks) >= self._CAP:
                self._fallbacks.clear()
                self._charges.clear()  # keyed by the specs' ids: drop them together
            self._fallbacks[name] = spec
        return spec

    def drug_factor(self, drug: str) -> float | None:
        """The heroin/methamphetamine-equivalent factor of a drug (None: no standard)."""
        if drug in self._drugs:
            return self._drugs[drug]
        factor = None
        for name, f in self.catalogue.drug_equivalents.items():
            if name == drug or drug.startswith(name) or name in drug:
                factor = f
                break
        self._store(self._drugs, drug, factor)
        return factor

    def _store(self, table: dict, key: Any, value: Any) -> None:
        if len(table) >= self._CAP:
            table.clear()
        table[key] = value

    # -- circumstances

    def settle(self, defendant: Defendant) -> _Settled:
        # Keyed by the members' ids: an Enum hashes in Python, an id in C.
        key = (tuple([id(c.code) for c in defendant.circumstances]), defendant.age, id(defendant.role))
        settled = self._settled.get(key)
        if settled is None:
            codes = {c.code for c in defendant.circumstances}
            settled = self._settle(codes, defendant.age, defendant.role)
            self._store(self._settled, key, settled)
        return settled

    def _settle(self, codes: set[CircumstanceCode], age: int | None, role: Role) -> _Settled:
        warnings: list[tuple[str, str | None, str]] = []

        def warn(message: str) -> None:
            warnings.append(("contradictory_circumstances", "circumstances", message))

        if age is not None:
            if age < 18 and CircumstanceCode.JUVENILE not in codes:
                codes.add(CircumstanceCode.JUVENILE)
            elif age >= 18 and CircumstanceCode.JUVENILE in codes:
                warn(f"未成年人犯罪与年龄{age}岁矛盾：按年龄不适用未成年人从宽")
                codes.discard(CircumstanceCode.JUVENILE)
            if age >= 75 and CircumstanceCode.ELDERLY not in codes:
                codes.add(CircumstanceCode.ELDERLY)
            elif age < 75 and CircumstanceCode.ELDERLY in codes:
                warn(f"已满七十五周岁与年龄{age}岁矛盾：按年龄不适用")
                codes.discard(CircumstanceCode.ELDERLY)
        if CircumstanceCode.JUVENILE in codes and CircumstanceCode.RECIDIVIST in codes:
            warn("累犯与未成年人犯罪矛盾：不满十八周岁的人犯罪不构成累犯（刑法第65条），不计累犯")
            codes.discard(CircumstanceCode.RECIDIVIST)
        if CircumstanceCode.SURRENDER in codes and CircumstanceCode.CONFESSION in codes:
            warn("自首与坦白不能同时成立（坦白以不构成自首为前提，刑法第67条）：按自首计算，不计坦白")
            codes.discard(CircumstanceCode.CONFESSION)
        stages = [c for c in _STAGE_ORDER if c in codes]
        if len(stages) > 1:
            keep = CircumstanceCode.ATTEMPT if CircumstanceCode.ATTEMPT in stages else stages[0]
            warn(f"{'、'.join(c.label for c in stages)}是互相排斥的犯罪形态：按{keep.label}计算")
            for c in stages:
                if c is not keep:
                    codes.discard(c)
        if CircumstanceCode.MAJOR_MERITORIOUS in codes and CircumstanceCode.MERITORIOUS in codes:
            codes.discard(CircumstanceCode.MERITORIOUS)
        if role in (Role.ACCESSORY, Role.COERCED) and role not in self.catalogue.roles:
            warnings.append(("unpriced_role", "role", f"{role.label}没有调节规则"))
        return _Settled(frozenset(codes), age is not None and age < 16, role, tuple(warnings))

    def adjustments(self, cp: _ChargePlan, c: _Settled) -> _Adjustments:
        key = (cp.intentional, cp.violent)
        adj = c.adjustments.get(key)
        if adj is None:
            adj = c.adjustments[key] = self._price(c, cp.intentional, cp.violent)
        return adj

    def _price(self, c: _Settled, intentional: bool, violent: bool) -> _Adjustments:
        """The priced circumstances (DOMAIN.md §2): which apply, at what share, with which basis."""
        cat, method, codes = self.catalogue, self.method, c.codes

        # First tier: multiplicative (role, capacity, completeness of the crime).
        first: list[tuple[str, str, float, CircumstanceCode | None]] = []
        first_mitigation = False
        items: list[tuple[str, str, float, CircumstanceCode | None, bool]] = []
        if c.role in cat.roles and c.role in (Role.ACCESSORY, Role.COERCED):
            r = cat.roles[c.role]
            items.append((c.role.label, r.basis, r.ratio, None, r.mitigation))
        for code in _FIRST_TIER:
            if code not in codes:
                continue
            rule = cat.circumstances[code]
            ratio, basis, label = rule.ratio, rule.basis, code.label
            if code is CircumstanceCode.JUVENILE and c.juvenile_under16:
                ratio, basis = method.juvenile_under16_ratio, method.juvenile_source
                label = "未成年人犯罪（不满十六周岁）"
            if code is CircumstanceCode.ELDERLY and not intentional:
                ratio = min(ratio, -0.35)
                basis += "；过失犯罪 减少20%-50%"
            items.append((label, basis, ratio, code, rule.mitigation))
        for label, basis, ratio, code, mit in items:
            first.append((f"{label}：基准刑乘以{1 + ratio:.2f}", basis, ratio, code))
            first_mitigation = first_mitigation or mit

        # Second tier: additive (同向相加、逆向相减), without double counting.
        parts: list[tuple[str, str, float, CircumstanceCode | None, float | None]] = []
        notes: list[tuple[CircumstanceCode, str, str]] = []
        mitigation = False
        comp_and_forgive = CircumstanceCode.COMPENSATION in codes and CircumstanceCode.FORGIVENESS in codes
        reconciliation = CircumstanceCode.RECONCILIATION in codes
        plea = CircumstanceCode.PLEA_AGREEMENT in codes
        for code in _SECOND_TIER:
            if code not in codes:
                continue
            rule = cat.circumstances[code]
            if code is CircumstanceCode.COURT_PLEA and plea:
                notes.append((code, "当庭自愿认罪已为认罪认罚所包含，不重复评价", method.plea_source))
                continue
            if code in (CircumstanceCode.COMPENSATION, CircumstanceCode.FORGIVENESS) and reconciliation:
                notes.append((code, f"{code.label}已为刑事和解所包含，不重复评价", rule.basis))
                continue
            if code is CircumstanceCode.FORGIVENESS and comp_and_forgive:
                continue
            if code is CircumstanceCode.COMPENSATION and comp_and_forgive:
                parts.append(
                    ("积极赔偿并取得谅解", method.compensation_source, method.compensation_with_forgiveness, code, None)
                )
                continue
            if code is CircumstanceCode.PRIOR_RECORD and CircumstanceCode.RECIDIVIST in codes:
                notes.append((code, "前科已作为累犯评价，不重复评价", rule.basis))
                continue
            ratio = rule.ratio
            basis = rule.basis
            if code is CircumstanceCode.RESTITUTION and violent:
                ratio = ratio / 2
                basis += "；抢劫等严重危害社会治安犯罪 从严掌握 (derived: half)"
            parts.append((code.label, basis, ratio, code, rule.min_months))
            mitigation = mitigation or rule.mitigation
        if plea:
            rule = cat.circumstances[CircumstanceCode.PLEA_AGREEMENT]
            reducing = sum(r for _, _, r, code, _ in parts if r < 0 and code in _PLEA_GROUP)
            heavy = any(code in codes for code in _PLEA_HEAVY)
            cap = method.plea_cap_with if heavy else method.plea_cap_alone
            if reducing == 0:
                ratio, label = method.plea_alone, "认罪认罚"
            else:
                ratio = method.plea_premium
                label = "认罪认罚（与自首、坦白、退赔、赔偿谅解等不重复评价，仅计认罚的额外从宽）"
            if reducing + ratio < cap:
                ratio = min(0.0, cap - reducing)
            parts.append(
                (label, method.plea_source if reducing else rule.basis, ratio, CircumstanceCode.PLEA_AGREEMENT, None)
            )
            if reducing + ratio < cap:
                # The others alone already pass the cap: bring the plea group back to it.
                parts.append(
                    (f"认罪认罚案件从宽合计不超过{-cap:.0%}", method.plea_source, cap - reducing - ratio, None, None)
                )
        priced = tuple(
            _Part(
                f"{label}：调节基准刑{ratio:+.0%}",
                f"{label}：调节基准刑{ratio:+.0%}，不少于{min_months:g}个月"
                if min_months is not None and ratio > 0
                else None,
                basis,
                ratio,
                code,
                min_months,
            )
            for label, basis, ratio, code, min_months in parts
        )
        return _Adjustments(tuple(first), first_mitigation, tuple(notes), priced, mitigation)

    def form(self, over_limit: bool, c: _Settled, restricted: bool) -> tuple[SentenceForm, bool, str, str]:
        key = (over_limit, restricted)
        form = c.forms.get(key)
        if form is None:
            form = c.forms[key] = self._form(over_limit, c, restricted)
        return form

    def _form(self, over_limit: bool, c: _Settled, restricted: bool) -> tuple[SentenceForm, bool, str, str]:
        """实刑 or 缓刑: statutory eligibility (arts. 72, 74), then the signals that courts weigh."""
        method = self.method
        codes = c.codes
        reasons: list[str] = []
        eligible = True
        if over_limit:
            eligible = False
            reasons.append(f"刑期超过{format_duration(method.probation_max_months)}")
        if CircumstanceCode.RECIDIVIST in codes:
            eligible = False
            reasons.append("累犯不适用缓刑")
        if not eligible:
            rule = "不符合缓刑条件：" + "、".join(reasons) + "，建议实刑"
            return SentenceForm.CUSTODY, False, rule, method.probation_source
        remorse = sum(code in codes for code in _REMORSE)
        lenient_first = c.role in (Role.ACCESSORY, Role.COERCED) or any(code in codes for code in _LENIENT_FIRST)
        record = CircumstanceCode.PRIOR_RECORD in codes
        likely = (remorse >= 2 or (remorse >= 1 and lenient_first)) and not record
        if restricted and CircumstanceCode.JUVENILE not in codes:
            likely = False
            reasons.append("该罪从严掌握缓刑")
        if record:
            reasons.append("有前科")
        if likely:
            shown = "、".join(x.label for x in _REMORSE if x in codes)
            rule = "符合缓刑条件，且有悔罪表现（" + shown + "），可适用缓刑"
            form = SentenceForm.PROBATION
        else:
            rule = "符合缓刑的刑期条件" + ("，但" + "、".join(reasons) if reasons else "，悔罪情节不足") + "，建议实刑"
            form = SentenceForm.CUSTODY
        return form, True, rule, method.probation_source + "; derived: 悔罪情节 ≥2 项 (或 1 项且有第一层次从宽)"


_PLANS: WeakKeyDictionary[ChargeCatalogue, _Plan] = WeakKeyDictionary()
_last: tuple[ChargeCatalogue | None, _Plan | None] = (None, None)


def _plan_of(catalogue: ChargeCatalogue) -> _Plan:
    global _last
    last_catalogue, last_plan = _last
    if catalogue is last_catalogue and last_plan is not None:
        return last_plan
    plan = _PLANS.get(catalogue)
    if plan is None:
        plan = _PLANS[catalogue] = _Plan(catalogue)
    _last = (catalogue, plan)
    return plan


# --------------------------------------------------------------------------- the calculation


STATED_TIER_REASON = "检察官认定"
"""Why a tier applies that the prosecutor stated (``Charge.tier``) rather than the facts selected."""
READ_TIER_REASON = "案情写明"
"""Why a tier applies that the case's texts say the conduct reaches (``Charge.tier_evidence``)."""


def _select_tier(cp: _ChargePlan, facts: _Facts, warnings: list[_Warning],
                 stated: tuple[str, str] | None = None, sole: bool = True) -> tuple[int, str]:
    """The statutory tier stated for the charge, else the one the facts select (the heaviest one
    reached), and why; warns when unsure.

    ``sole``: the charge is the defendant's only one. A defendant's deaths and injuries are not told
    apart by charge, so beside another charge they need not be this charge's: a tier that begins at
    无期徒刑 (绑架 that kills or seriously injures the hostage) is then not selected by them, and the
    prosecutor is told to state it where it applies."""
    values = facts.values
    if stated is not None:
        label, why = stated
        index = cp.tier_index.get(label)
        if index is not None:
            reached, reason = _reached_tier(cp, values, [], sole)
            if reached != index and (reached != cp.default or cp.reaches_basic(values)):
                # the quantities read select another tier: the stated one is used, and the difference named
                why_reached = f"（{reason}）" if reached != cp.default else ""
                _warn(warnings, ("stated_tier_differs", "tiers",
                                 f"{cp.spec.label}：按{why}的“{label}”计算；认定的数量事实{why_reached}对应"
                                 f"“{cp.tiers[reached].tier.label}”，请核对"))
            return index, why
        _warn(warnings, ("unknown_tier", "charges", f"{cp.spec.label}没有“{label}”这一法定刑幅度：按事实选择"))
    chosen, reason = _reached_tier(cp, values, warnings, sole)
    if cp.selecting:
        for q in cp.selecting:
            if values[q] is not None:
                break
        else:
            _warn(warnings, cp.missing_warning)
            return chosen, "缺少数量事实，按基本档计算"
    if chosen == cp.default and cp.basic_conds and not cp.reaches_basic(values):
        _warn(warnings, cp.below_warning)
    return chosen, reason


def _reached_tier(cp: _ChargePlan, values: Any, warnings: list[_Warning], sole: bool) -> tuple[int, str]:
    """The heaviest tier the quantities reach (else the default one), and why."""
    chosen = cp.default
    reason = cp.default_reason
    for i, tier in enumerate(cp.tiers):
        also = tier.also
        for j, (quantity, bound, text) in enumerate(tier.conds):
            value = values[quantity]
            if value is not None and value >= bound:
                if also is not None and (needed := also[j]) is not None:
                    other = values[needed[0]]
                    if other is None or other < needed[1]:
                        continue
                if not sole and tier.no_fixed_term:
                    _warn(warnings, ("harm_unattributed", _QUANTITY_FIELDS.get(quantity, "aggravations"),
                                     tier.unattributed_warning))
                elif i >= chosen:
                    chosen, reason = i, text
                break
    return chosen, reason


def _calculate_charge(
    plan: _Plan,
    cp: _ChargePlan,
    facts: _Facts,
    settled: _Settled,
    warnings: list[_Warning],
    *,
    recognised: bool,
    name: str,
    stated: tuple[str, str] | None = None,
    sole: bool = True,
) -> tuple[ChargeCalculation, _TierPlan]:
    spec = cp.spec
    if recognised:
        index, reason = _select_tier(cp, facts, warnings, stated, sole)
        tp = cp.tiers[index]
        tier_step = _step(_OF_CHARGE, "tier", cp.tier_rule(index, reason), spec.statutory_source, charge=name)
    else:
        tp = cp.tiers[0]
        tier_step = _step(_OF_CHARGE, "tier", tp.unlisted_rule, tp.tier.start_source, charge=name)
    start = tp.start
    steps = [
        tier_step,
        _step(
            _MOVED_OF_CHARGE,
            "starting_point",
            tp.start_rule,
            tp.start_basis,
            months=start,
            value_months=start,
            charge=name,
        ),
    ]

    # 基准刑: the starting point plus 增加刑罚量 for quantities beyond the tier's threshold.
    values = facts.values
    value = start
    charge = spec.name
    for inc in tp.increments:
        amount = values[inc.quantity]
        if amount is None:
            continue
        extra = amount - inc.base
        if extra <= 0:
            continue
        months = extra / inc.per * inc.months
        if inc.max_months is not None:
            months = min(months, inc.max_months)
        value += months
        steps.append(
            _step(
                _MOVED_OF_CHARGE,
                "baseline",
                f"{inc.prefix}{extra:g}{inc.suffix}",
                inc.source,
                months=months,
                value_months=value,
                charge=charge,
            )
        )
    if len(steps) == 2:
        steps.append(
            _step(
                _MOVED_OF_CHARGE,
                "baseline",
                "无超出基本犯罪构成的数量事实，基准刑等于量刑起点",
                tp.no_increment_basis,
                months=0.0,
                value_months=value,
                charge=charge,
            )
        )
    baseline = value

    # 第一层次: multiplied.
    adj = plan.adjustments(cp, settled)
    for rule, basis, ratio, code in adj.first:
        before = value
        value *= 1 + ratio
        steps.append(
            _step(
                _PRICED,
                "first_tier",
                rule,
                basis,
                circumstance=code,
                ratio=ratio,
                months=value - before,
                value_months=value,
                charge=charge,
            )
        )

    # 第二层次: added and subtracted together on the first-tier result.
    base = value
    for code, rule, basis in adj.notes:
        steps.append(
            _step(
                _PRICED,
                "second_tier",
                rule,
                basis,
                circumstance=code,
                ratio=0.0,
                months=0.0,
                value_months=value,
                charge=charge,
            )
        )
    total = 0.0
    for part in adj.parts:
        ratio = part.ratio
        months = ratio * base
        rule = part.rule
        if part.rule_at_least is not None and months < part.min_months:  # type: ignore[operator]
            months = part.min_months  # type: ignore[assignment]
            rule = part.rule_at_least
        total += months
        steps.append(
            _step(
                _PRICED,
                "second_tier",
                rule,
                part.basis,
                circumstance=part.circumstance,
                ratio=ratio,
                months=months,
                value_months=base + total,
                charge=charge,
            )
        )
    value = base + total
    if value < base * 0.1:
        value = base * 0.1
        steps.append(
            _step(
                _VALUED_OF_CHARGE,
                "second_tier",
                "从宽调节合计超过基准刑的90%，按基准刑的10%计算",
                "derived: 调节结果不为零或负数",
                value_months=value,
                charge=charge,
            )
        )
    mitigation = adj.first_mitigation or adj.second_mitigation

    # 法定刑限制: inside the tier unless 减轻 applies; 无期徒刑 past the fixed-term ceiling.
    floor = tp.mitigated_floor if mitigation else tp.floor
    ceiling = tp.ceiling
    kind = SentenceKind.FIXED_TERM
    adjusted: float | None = value
    if tp.no_fixed_term and not mitigation:
        kind = tp.floor_kind
        adjusted = None
        steps.append(
            _step(
                _VALUED_OF_CHARGE,
                "clamp",
                "本档法定刑为无期徒刑或者死刑，无法定减轻情节，不得判处有期徒刑" if kind is SentenceKind.LIFE
                else "本档法定刑为死刑，无法定减轻情节，不得判处有期徒刑或者无期徒刑",
                tp.clamp_basis,
                value_months=None,
                charge=name,
            )
        )
    elif tp.may_exceed_fixed_term and value >= ceiling + plan.method.life_margin_months:
        kind = SentenceKind.LIFE
        adjusted = None
        steps.append(
            _step(
                _VALUED_OF_CHARGE,
                "clamp",
                f"调节结果{months_text(value)}超过有期徒刑上限十五年，本档可判处无期徒刑",
                tp.life_basis,
                value_months=None,
                charge=name,
            )
        )
    elif value > ceiling or value < floor:
        clamped = min(max(value, floor), ceiling)
        why = (
            "不得超过本档上限"
            if value > ceiling
            else ("依法减轻处罚，不低于下一档下限" if mitigation else "无法定减轻情节，不得低于本档下限")
        )
        steps.append(
            _step(
                _MOVED_OF_CHARGE,
                "clamp",
                f"{why}：{months_text(value)} → {months_text(clamped)}",
                tp.mitigated_clamp_basis if mitigation else tp.clamp_basis,
                months=clamped - value,
                value_months=clamped,
                charge=name,
            )
        )
        adjusted = clamped
    if adjusted is not None:
        if adjusted < 6 and tp.allows_detention:
            kind = SentenceKind.DETENTION
        elif adjusted < 6:
            adjusted = 6.0
    calc = trusted(
        ChargeCalculation,
        {
            "charge": name,
            "statutory": trusted(StatutoryRange, {"charge": name, **tp.statutory}, _ALL_STATUTORY),
            "starting_point_months": start,
            "baseline_months": baseline,
            "adjusted_months": adjusted,
            "kind": kind,
            "steps": steps,
            "derived": tp.derived,
            "recognised": recognised,
            "fine_yuan": _fine(tp.fine, adjusted, facts) if recognised else None,
            "mitigation": mitigation,
        },
        _ALL_CALCULATION,
    )
    return calc, tp


def _fine(rule: FineRule | None, months: float | None, facts: _Facts) -> int | None:
    if rule is None:
        return None
    if rule.amount_ratio is not None and facts.amount_yuan:
        estimate = rule.amount_ratio * facts.amount_yuan
    else:
        estimate = rule.per_month_yuan * (months if months is not None else 180)
    estimate = max(estimate, rule.min_yuan)
    if rule.max_yuan is not None:
        estimate = min(estimate, rule.max_yuan)
    step = 1000 if estimate >= 1000 else 100
    return int(round(estimate / step) * step)


def _combine(plan: _Plan, calcs: list[ChargeCalculation]) -> tuple[SentenceKind, float | None, list[GuidelineStep]]:
    """数罪并罚 (刑法第69条): between the highest term and the sum, capped."""
    method = plan.method
    if any(c.kind is SentenceKind.DEATH for c in calcs):
        return (
            SentenceKind.DEATH,
            None,
            [_step(_VALUED, "combine", "数罪中有判处死刑的，执行死刑", "刑法第69条", value_months=None)],
        )
    if any(c.kind is SentenceKind.LIFE for c in calcs):
        return (
            SentenceKind.LIFE,
            None,
            [_step(_VALUED, "combine", "数罪中有判处无期徒刑的，执行无期徒刑", "刑法第69条", value_months=None)],
        )
    terms = [(c.kind, c.adjusted_months or 0.0) for c in calcs]
    fixed = [m for k, m in terms if k is SentenceKind.FIXED_TERM]
    steps: list[GuidelineStep] = []
    if fixed:
        kind = SentenceKind.FIXED_TERM
        if len(fixed) < len(terms):
            steps.append(
                _step(_BASIC, "combine", "数罪中有判处有期徒刑和拘役的，执行有期徒刑", "刑法第69条第2款")
            )
        months = fixed
        total = sum(months)
        cap = 240.0 if total < 420 else float(COMBINED_CAP_MONTHS[SentenceKind.FIXED_TERM])
    else:
        kind = SentenceKind.DETENTION
        months = [m for _, m in terms]
        total = sum(months)
        cap = float(COMBINED_CAP_MONTHS[SentenceKind.DETENTION])
    highest = max(months)
    upper = min(total, cap)
    point = highest + method.combine_share * (upper - highest)
    steps.append(
        _step(
            _MOVED,
            "combine",
            (
                f"总和刑期{months_text(total)}以下、数刑中最高刑期{months_text(highest)}以上"
                f"（上限{months_text(cap)}），酌定执行刑期"
            ),
            f"刑法第69条；{method.combine_source}",
            months=point - highest,
            value_months=point,
        )
    )
    return kind, point, steps


def calculate(
    defendant: Defendant, case: Case | None = None, *, catalogue: ChargeCatalogue | None = None
) -> GuidelineResult:
    """The guideline recommendation for one defendant, with every step and warning.

    Only what is known before judgment is read (charges, role, circumstances, quantities, age,
    the court's province); the defendant's sentence, if present, is ignored.
    """
    catalogue = catalogue or default_catalogue()
    plan = _plan_of(catalogue)
    if defendant.is_unit:
        return _unit_result(defendant, plan, catalogue)
    province = case.known_province if case is not None else None
    warnings: list[_Warning] = []
    facts = _Facts(defendant, plan)
    for drug in facts.unknown_drugs:
        _warn(warnings, ("unknown_drug", "quantities.drug_grams", f"毒品“{drug}”没有折算标准，未计入数量"))
    settled = plan.settle(defendant)
    for warning in settled.warnings:
        _warn(warnings, warning)

    stated = _stated_tiers(defendant)
    own = _charge_facts(defendant, plan)
    for charge, charge_facts in (own or {}).items():
        for drug in charge_facts.unknown_drugs:
            _warn(warnings, ("unknown_drug", f"charge_quantities.{charge}.drug_grams",
                             f"{charge}罪：毒品“{drug}”没有折算标准，未计入数量"))
    names: list[str] = []
    seen: set[str] = set()
    calcs: list[ChargeCalculation] = []
    tiers: list[_TierPlan] = []
    plans: list[_ChargePlan] = []
    shared_amount: list[str] = []  # the charges the defendant's one amount prices
    resolved = plan.resolve(defendant.charge_names)
    sole = len({key for _, _, key in resolved}) == 1
    for given, spec, key in resolved:
        if key in seen:
            continue
        seen.add(key)
        names.append(key)
        charge_facts = own.get(_bare(given), facts) if own else facts
        if spec is None:
            positions = {c.name: i for i, c in reversed(list(enumerate(defendant.charges)))}
            field_ = f"charges[{positions.get(given, 0)}]"
            if catalogue.fallback is None:
                _warn(warnings, ("unknown_charge", field_, f"罪名“{given}”不在罪名目录中，无法计算"))
                continue
            _warn(
                warnings,
                (
                    "unknown_charge",
                    field_,
                    f"罪名“{given}”不在罪名目录（{catalogue.version}）中：按最常见的法定刑幅度估计，幅度加宽",
                ),
            )
            cp = plan.charge(plan.fallback(key), None)
            calc, tier = _calculate_charge(plan, cp, charge_facts, settled, warnings, recognised=False, name=key)
        else:
            cp = plan.charge(spec, province)
            if charge_facts is facts and cp.prices_amount:
                shared_amount.append(spec.name)
            calc, tier = _calculate_charge(plan, cp, charge_facts, settled, warnings, recognised=True,
                                           name=spec.name, stated=stated.get(_bare(given)) if stated else None,
                                           sole=sole)
        calcs.append(calc)
        tiers.append(tier)
        plans.append(cp)
    if facts.amount_yuan is not None and len(shared_amount) >= 2:
        _warn_amount_unattributed(warnings, facts.amount_yuan, shared_amount)
    if not defendant.charges:
        _warn(warnings, ("no_charges", "charges", "被告人没有罪名，无法计算"))

    method = plan.method
    steps = calcs[0].steps.copy() if len(calcs) == 1 else [s for c in calcs for s in c.steps]
    if not calcs:
        return trusted(
            GuidelineResult,
            {
                "defendant": defendant.name,
                "charges": names,
                "statutory": None,
                "charge_results": [],
                "low_months": None,
                "point_months": None,
                "high_months": None,
                "kind": SentenceKind.FIXED_TERM,
                "form": SentenceForm.CUSTODY,
                "probation_eligible": False,
                "fine_yuan": None,
                "steps": steps,
                "warnings": _warning_models(warnings),
                "ruleset_version": catalogue.version,
                "band": method.max_band,
            },
            _ALL_RESULT,
        )

    if len(calcs) == 1:
        only = calcs[0]
        kind, point = only.kind, only.adjusted_months
        statutory = only.statutory
        fine = only.fine_yuan or None
        derived = only.derived
    else:
        kind, point, combine_steps = _combine(plan, calcs)
        steps += combine_steps
        statutory = max(calcs, key=_severity).statutory
        fines = [c.fine_yuan for c in calcs if c.fine_yuan]
        fine = sum(fines) if fines else None
        derived = any(c.derived for c in calcs)
    widening = {code for code, _, _ in warnings if code != "derived_rule"}
    band = method.discretion_band + method.warning_widening * len(widening) + (method.derived_band if derived else 0.0)
    band = min(band, method.max_band)
    if derived:
        _warn(warnings, ("derived_rule", None, "部分罪名的量刑起点由法定刑幅度推定（指导意见未规定），幅度加宽"))

    low = high = None
    probation_eligible = False
    if kind is SentenceKind.DEATH:
        form = SentenceForm.DEATH
        steps.append(_step(_VALUED, "discretion", "结果为死刑，不以月数表示", method.life_source, value_months=None))
    elif kind is SentenceKind.LIFE or point is None:
        form = SentenceForm.LIFE
        steps.append(
            _step(_VALUED, "discretion", "结果为无期徒刑，不以月数表示", method.life_source, value_months=None)
        )
    else:
        low = max(1.0, point * (1 - band))
        high = point * (1 + band)
        cap = 240.0 if kind is SentenceKind.FIXED_TERM else 12.0
        if len(calcs) == 1 and not widening:
            # One charge, its tier certain: the declared sentence stays inside the statutory tier.
            cap = tiers[0].ceiling
            if not calcs[0].mitigation:
                low = max(low, min(tiers[0].floor, point))
        high = min(high, max(cap, point))
        steps.append(
            _step(
                _DISCRETION,
                "discretion",
                f"宣告刑幅度：在调节结果上下{_percent(band)}以内（{months_text(low)}至{months_text(high)}）",
                method.discretion_source
                + ("；每项提示加宽幅度 (derived)" if widening else "")
                + ("；推定起点加宽幅度 (derived)" if derived else ""),
                ratio=band,
                value_months=point,
            )
        )
        restricted = plans[0].restricted if len(plans) == 1 else any(cp.restricted for cp in plans)
        form, probation_eligible, rule, basis = plan.form(
            point > method.probation_max_months + 0.5, settled, restricted
        )
        steps.append(_step(_VALUED, "form", rule, basis, value_months=point))

    return trusted(
        GuidelineResult,
        {
            "defendant": defendant.name,
            "charges": names,
            "statutory": statutory,
            "charge_results": calcs,
            "low_months": low,
            "point_months": point,
            "high_months": high,
            "kind": kind,
            "form": form,
            "probation_eligible": probation_eligible,
            "fine_yuan": fine,
            "steps": steps,
            "warnings": _warning_models(warnings),
            "ruleset_version": catalogue.version,
            "band": band,
        },
        _ALL_RESULT,
    )


UNIT_TIER_LABEL = "单位犯罪，对单位判处罚金"
"""The statutory tier (法定刑幅度) of every unit defendant: 刑法第三十一条 fixes the penalty, whatever the charge."""

_UNIT_BASIS = "刑法第30条、第31条"


def _unit_result(defendant: Defendant, plan: _Plan, catalogue: ChargeCatalogue) -> GuidelineResult:
    """被告单位: the law fines the unit and imposes no term (刑法第三十一条), so there is no tier,
    starting point, adjustment or discretion band to compute. The fine's amount is the court's
    (the catalogue's fine rules are for persons); the persons responsible are separate defendants."""
    resolved = list(plan.resolve(defendant.charge_names))
    names = list(dict.fromkeys(key for _, _, key in resolved))
    spec = next((s for _, s, _ in resolved if s is not None), None)
    statutory = None
    if names:
        statutory = trusted(StatutoryRange, {
            "charge": spec.name if spec is not None else names[0],
            "article": spec.article if spec is not None else "31",
            "tier_label": UNIT_TIER_LABEL,
            "min_months": None,
            "max_months": None,
            "min_kind": SentenceKind.FINE_ONLY,
            "max_kind": SentenceKind.FINE_ONLY,
        }, _ALL_STATUTORY)
    warnings: list[_Warning] = [] if defendant.charges else [("no_charges", "charges", "被告单位没有罪名，无法计算")]
    steps = [
        _step(_BASIC, "tier",
              "被告单位犯罪：对单位判处罚金，不判处自由刑；对直接负责的主管人员和其他直接责任人员另行判处刑罚",
              _UNIT_BASIS),
        _step(_BASIC, "form", "单处罚金（非监禁刑）；罚金数额由法院根据犯罪情节决定，本规则集不作测算",
              _UNIT_BASIS + "；刑法第52条"),
    ]
    return trusted(
        GuidelineResult,
        {
            "defendant": defendant.name,
            "charges": names,
            "statutory": statutory,
            "charge_results": [],
            "low_months": 0.0,
            "point_months": 0.0,
            "high_months": 0.0,
            "kind": SentenceKind.FINE_ONLY,
            "form": SentenceForm.NON_CUSTODIAL,
            "probation_eligible": False,
            "fine_yuan": None,
            "steps": steps,
            "warnings": _warning_models(warnings),
            "ruleset_version": catalogue.version,
            "band": 0.0,
        },
        _ALL_RESULT,
    )


def statutory_tier(
    defendant: Defendant, case: Case | None = None, *, catalogue: ChargeCatalogue | None = None
) -> tuple[str, str] | None:
    """(charge, tier label) of ``calculate(defendant, case).statutory``; None where it has none.

    Indexing a corpus needs only the statutory tier (法定刑幅度) of each defendant. With one charge
    the catalogue knows, that is the tier its quantities select, without the starting point,
    baseline, adjustments and form of the whole calculation (most of an index build's CPU at 1M
    rows); with several charges the most serious one is found by calculating them all.
    """
    catalogue = catalogue or default_catalogue()
    plan = _plan_of(catalogue)
    resolved = {key: (given, spec) for given, spec, key in plan.resolve(defendant.charge_names)}
    if len(resolved) == 1 and not defendant.is_unit:
        ((name, (given, spec)),) = resolved.items()
        if spec is not None:  # (a charge outside the catalogue gets the fallback tier of the calculation)
            cp = plan.charge(spec, case.known_province if case is not None else None)
            stated = _stated_tiers(defendant)
            own = _charge_facts(defendant, plan)
            facts = own.get(_bare(given)) if own else None
            index, _ = _select_tier(cp, facts or _Facts(defendant, plan), [],
                                    stated.get(_bare(given)) if stated else None)
            return name, cp.tiers[index].statutory["tier_label"]
    statutory = calculate(defendant, case, catalogue=catalogue).statutory
    return (statutory.charge, statutory.tier_label) if statutory is not None else None


def _stated_tiers(defendant: Defendant) -> dict[str, tuple[str, str]] | None:
    """The tiers stated by charge name as given (``Charge.tier``), each with why it applies (stated by
    the prosecutor, or read from the case's texts); None when none is (the common case)."""
    if not any(c.tier for c in defendant.charges):
        return None
    return {_bare(c.name): (c.tier, READ_TIER_REASON if c.tier_read else STATED_TIER_REASON)
            for c in defendant.charges if c.tier}


def _warn_amount_unattributed(warnings: list[_Warning], amount: float, names: list[str]) -> None:
    """One amount for several charges it prices (数罪: 盗窃 and 诈骗): each is priced with all of it, which
    overstates both where the amount is their sum; ``charge_quantities`` gives each its own."""
    _warn(warnings, ("amount_unattributed", "charge_quantities",
                     f"{'、'.join(n + '罪' for n in names)}：犯罪数额{amount:.0f}元未分罪，各罪均按此数额计算；"
                     "数额分属不同罪名时，请分罪填写（charge_quantities）"))


def _charge_facts(defendant: Defendant, plan: _Plan) -> dict[str, _Facts] | None:
    """The facts of each charge that has quantities of its own, by charge name as given (``Charge.quantities``);
    None when none has (the common case: the defendant's quantities serve every charge)."""
    if not any(c.quantities is not None for c in defendant.charges):
        return None
    return {_bare(c.name): _Facts(defendant, plan, c.quantities) for c in defendant.charges if c.quantities is not None}


def _bare(name: str) -> str:
    """A charge name as resolution compares it (``盗窃罪`` → ``盗窃``)."""
    return name.strip().removesuffix("罪")


def _severity(calc: ChargeCalculation) -> tuple[int, float]:
    if calc.kind is SentenceKind.DEATH:
        return (3, 0.0)
    if calc.kind is SentenceKind.LIFE:
        return (2, 0.0)
    return (1 if calc.kind is SentenceKind.FIXED_TERM else 0, calc.adjusted_months or 0.0)
