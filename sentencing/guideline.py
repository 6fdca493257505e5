"""The sentencing guideline (量刑指导意见) as explainable arithmetic: one home for it.

(case, defendant) → statutory tier (法定刑幅度) → starting point (量刑起点) → baseline (基准刑)
→ first-tier circumstances (multiplied) → second-tier circumstances (同向相加、逆向相减) → clamp to
the tier (unless 减轻 applies) → 数罪并罚 (art. 69) → the 20% discretion band → a range, the
custody form and a fine. Every number comes from the catalogue (:mod:`sentencing.charges`);
every step is recorded with its legal basis, so the result explains itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from sentencing.case import Case, CircumstanceCode, Defendant, InjuryGrade, Role
from sentencing.charges import (
    ChargeCatalogue,
    ChargeSpec,
    Condition,
    FinePolicy,
    Increment,
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

    def explain_text(self) -> str:
        """The calculation as readable Chinese, step by step."""
        lines = [f"被告人{self.defendant}：{'、'.join(c + '罪' for c in self.charges) or '（无罪名）'}"]
        for i, step in enumerate(self.steps, 1):
            label = _STAGE_LABELS[step.stage]
            change = ""
            if step.months is not None and step.stage not in ("starting_point", "tier", "discretion"):
                change = f"（{step.months:+.1f}个月）"
            value = f" → {_months_text(step.value_months)}" if step.value_months is not None else ""
            lines.append(f"{i}. 【{label}】{step.rule}{change}{value}。依据：{step.basis}")
        lines.append("结论：" + self.summary_text())
        for w in self.warnings:
            lines.append(f"提示（{w.code}）：{w.message}")
        lines.append(f"规则集版本：{self.ruleset_version}")
        return "\n".join(lines)

    def summary_text(self) -> str:
        if self.kind in (SentenceKind.LIFE, SentenceKind.DEATH, SentenceKind.DEATH_SUSPENDED):
            text = f"建议判处{self.kind.label}"
        elif self.point_months is None:
            text = "无法计算刑期"
        else:
            text = (
                f"建议判处{self.kind.label}{_months_text(self.point_months)}"
                f"（幅度{_months_text(self.low_months)}至{_months_text(self.high_months)}）"
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


def _months_text(months: float | None) -> str:
    if months is None:
        return "—"
    whole = round(months)
    return format_duration(whole) if whole >= 1 else f"{months:.1f}个月"


# --------------------------------------------------------------------------- facts


@dataclass
class _Facts:
    """The quantities of one defendant on the scales the catalogue uses."""

    amount_yuan: float | None = None
    drug_grams: float | None = None
    injury: InjuryGrade | None = None
    injured_people: int = 0
    deaths: float | None = None
    occurrences: float | None = None
    blood_alcohol: float | None = None
    unknown_drugs: list[str] = field(default_factory=list)

    def value(self, quantity: str) -> float | None:
        if quantity == "injury":
            return None if self.injury is None else float(self.injury.rank)
        if quantity == "injured_people":
            return float(self.injured_people) if self.injury is not None else None
        return getattr(self, quantity)


def _facts(defendant: Defendant, catalogue: ChargeCatalogue) -> _Facts:
    q = defendant.quantities
    facts = _Facts(
        amount_yuan=q.amount_yuan.value if q.amount_yuan else None,
        deaths=q.deaths.value if q.deaths else None,
        occurrences=q.occurrences.value if q.occurrences else None,
        blood_alcohol=q.blood_alcohol_mg_per_100ml.value if q.blood_alcohol_mg_per_100ml else None,
    )
    if q.drug_grams:
        total = 0.0
        for drug, measure in q.drug_grams.items():
            grams = catalogue.meth_equivalent_grams(drug, measure.value)
            if grams is None:
                facts.unknown_drugs.append(drug)
            else:
                total += grams
        if len(facts.unknown_drugs) < len(q.drug_grams):
            facts.drug_grams = total
    if q.injuries:
        facts.injury = max((i.grade for i in q.injuries), key=lambda g: g.rank)
        facts.injured_people = sum(i.count for i in q.injuries if i.grade.rank >= InjuryGrade.LIGHT_2.rank)
        if facts.injury is InjuryGrade.DEATH:
            dead = sum(i.count for i in q.injuries if i.grade is InjuryGrade.DEATH)
            facts.deaths = max(facts.deaths or 0, dead)
    return facts


# --------------------------------------------------------------------------- the calculation


class _Run:
    """The state of one defendant's calculation: warnings and the catalogue."""

    def __init__(self, catalogue: ChargeCatalogue, province: str | None) -> None:
        self.catalogue = catalogue
        self.province = province
        self.warnings: list[GuidelineWarning] = []

    def warn(self, code: str, field_: str | None, message: str) -> None:
        if not any(w.code == code and w.field == field_ and w.message == message for w in self.warnings):
            self.warnings.append(GuidelineWarning(code=code, field=field_, message=message))

    def threshold(self, spec: ChargeSpec, name: str) -> float:
        return self.catalogue.threshold(spec, name, self.province).value


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


def _condition_met(run: _Run, spec: ChargeSpec, cond: Condition, facts: _Facts) -> bool | None:
    """True/False when the fact is known, None when it is missing."""
    if cond.quantity == "injury":
        assert cond.grade is not None
        if facts.injury is None:
            return None
        return facts.injury.rank >= cond.grade.rank
    value = facts.value(cond.quantity)
    if value is None:
        return None
    bound = cond.value if cond.value is not None else run.threshold(spec, cond.threshold)  # type: ignore[arg-type]
    return value >= bound


def _condition_text(run: _Run, spec: ChargeSpec, cond: Condition) -> str:
    if cond.quantity == "injury":
        return f"伤情达到{cond.grade.label}"  # type: ignore[union-attr]
    bound = cond.value if cond.value is not None else run.threshold(spec, cond.threshold)  # type: ignore[arg-type]
    name = f"{cond.threshold}（{bound:g}）" if cond.threshold else f"{bound:g}"
    return f"{_QUANTITY_LABELS[cond.quantity]}达到{name}"


def _select_tier(run: _Run, spec: ChargeSpec, facts: _Facts) -> tuple[int, GuidelineStep]:
    basic = spec.tiers[spec.default_tier]
    selecting = set(spec.key_quantities) or {c.quantity for c in basic.when}
    missing = sorted(q for q in selecting if facts.value(q) is None)
    chosen = spec.default_tier
    reason = "基本犯罪构成" if not spec.derived else "条文首先规定的法定刑幅度"
    for i, tier in enumerate(spec.tiers):
        for cond in tier.when:
            if _condition_met(run, spec, cond, facts):
                if i >= chosen:
                    chosen, reason = i, _condition_text(run, spec, cond)
                break
    if selecting and len(missing) == len(selecting):
        fields = ", ".join(_QUANTITY_FIELDS[q] for q in missing)
        run.warn(
            "missing_quantity",
            _QUANTITY_FIELDS[missing[0]],
            f"{spec.label}：缺少选择法定刑幅度所需的事实（{fields}），按“{basic.label}”计算，实际可能更重",
        )
        reason = "缺少数量事实，按基本档计算"
    elif (
        chosen == spec.default_tier and basic.when and not any(_condition_met(run, spec, c, facts) for c in basic.when)
    ):
        conds = "或".join(_condition_text(run, spec, c) for c in basic.when)
        run.warn(
            "below_threshold",
            _QUANTITY_FIELDS[basic.when[0].quantity],
            f"{spec.label}：已知事实未达到“{basic.label}”的标准（{conds}），可能另有入罪依据（如入户、扒窃、情节），按该档计算",
        )
    tier = spec.tiers[chosen]
    step = GuidelineStep(
        stage="tier",
        rule=f"{spec.label}：{reason}，适用“{tier.label}”（{_tier_text(tier)}）",
        basis=spec.statutory_source,
        charge=spec.name,
    )
    return chosen, step


def _tier_text(tier: Tier) -> str:
    floor = {"surveillance": "管制", "detention": "拘役", "fine_only": "单处罚金"}.get(tier.floor)  # type: ignore[call-overload]
    ceiling = {"detention": "拘役", "life": "无期徒刑", "death": "死刑"}.get(tier.ceiling)  # type: ignore[call-overload]
    lo = floor or f"有期徒刑{format_duration(tier.floor)}"  # type: ignore[arg-type]
    hi = ceiling or f"有期徒刑{format_duration(tier.ceiling)}"  # type: ignore[arg-type]
    return f"{lo}至{hi}"


def _starting_point(run: _Run, spec: ChargeSpec, tier: Tier, derived: bool) -> tuple[float, GuidelineStep]:
    lo, hi = tier.start
    method = run.catalogue.method
    point = tier.start_point if tier.start_point is not None else lo + method.start_position * (hi - lo)
    basis = tier.start_source
    if tier.start_point is None and hi > lo:
        basis += f"；{method.start_position_source}"
    rule = f"在{_months_text(lo)}至{_months_text(hi)}幅度内确定量刑起点" if hi > lo else f"量刑起点为{_months_text(lo)}"
    if derived:
        rule += "（推定：指导意见未规定该罪，起点由法定刑幅度推定）"
    return point, GuidelineStep(
        stage="starting_point", rule=rule, basis=basis, months=point, value_months=point, charge=spec.name
    )


def _increment_base(run: _Run, spec: ChargeSpec, tier: Tier, inc: Increment) -> float:
    if inc.above is not None:
        return inc.above
    if inc.above_threshold is not None:
        return run.threshold(spec, inc.above_threshold)
    if inc.quantity == "injured_people":
        return 1.0
    for cond in tier.when:
        if cond.quantity == inc.quantity and cond.quantity != "injury":
            return cond.value if cond.value is not None else run.threshold(spec, cond.threshold)  # type: ignore[arg-type]
    return 0.0


def _baseline(
    run: _Run, spec: ChargeSpec, tier: Tier, start: float, facts: _Facts
) -> tuple[float, list[GuidelineStep]]:
    value = start
    steps: list[GuidelineStep] = []
    for inc in tier.increments:
        amount = facts.value(inc.quantity)
        if amount is None:
            continue
        base = _increment_base(run, spec, tier, inc)
        extra = amount - base
        if extra <= 0:
            continue
        months = extra / inc.per * inc.months
        if inc.max_months is not None:
            months = min(months, inc.max_months)
        value += months
        steps.append(
            GuidelineStep(
                stage="baseline",
                rule=(
                    f"{_QUANTITY_LABELS[inc.quantity]}超出{base:g}的部分 {extra:g}，每{inc.per:g}增加{inc.months:g}个月"
                ),
                basis=inc.source,
                months=months,
                value_months=value,
                charge=spec.name,
            )
        )
    if not steps:
        steps.append(
            GuidelineStep(
                stage="baseline",
                rule="无超出基本犯罪构成的数量事实，基准刑等于量刑起点",
                basis=spec.guideline or spec.statutory_source,
                months=0.0,
                value_months=value,
                charge=spec.name,
            )
        )
    return value, steps


_STAGE_ORDER = (CircumstanceCode.PREPARATION, CircumstanceCode.ATTEMPT, CircumstanceCode.DISCONTINUATION)
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


@dataclass
class _Circumstances:
    """The defendant's circumstances after contradictions are settled (computed once per defendant)."""

    codes: set[CircumstanceCode]
    juvenile_under16: bool
    role: Role


def _settle_circumstances(run: _Run, defendant: Defendant) -> _Circumstances:
    codes = set(defendant.circumstance_codes)
    age = defendant.age
    if age is not None:
        if age < 18 and CircumstanceCode.JUVENILE not in codes:
            codes.add(CircumstanceCode.JUVENILE)
        elif age >= 18 and CircumstanceCode.JUVENILE in codes:
            run.warn(
                "contradictory_circumstances",
                "circumstances",
                f"未成年人犯罪与年龄{age}岁矛盾：按年龄不适用未成年人从宽",
            )
            codes.discard(CircumstanceCode.JUVENILE)
        if age >= 75 and CircumstanceCode.ELDERLY not in codes:
            codes.add(CircumstanceCode.ELDERLY)
        elif age < 75 and CircumstanceCode.ELDERLY in codes:
            run.warn("contradictory_circumstances", "circumstances", f"已满七十五周岁与年龄{age}岁矛盾：按年龄不适用")
            codes.discard(CircumstanceCode.ELDERLY)
    if CircumstanceCode.JUVENILE in codes and CircumstanceCode.RECIDIVIST in codes:
        run.warn(
            "contradictory_circumstances",
            "circumstances",
            "累犯与未成年人犯罪矛盾：不满十八周岁的人犯罪不构成累犯（刑法第65条），不计累犯",
        )
        codes.discard(CircumstanceCode.RECIDIVIST)
    if CircumstanceCode.SURRENDER in codes and CircumstanceCode.CONFESSION in codes:
        run.warn(
            "contradictory_circumstances",
            "circumstances",
            "自首与坦白不能同时成立（坦白以不构成自首为前提，刑法第67条）：按自首计算，不计坦白",
        )
        codes.discard(CircumstanceCode.CONFESSION)
    stages = [c for c in _STAGE_ORDER if c in codes]
    if len(stages) > 1:
        keep = CircumstanceCode.ATTEMPT if CircumstanceCode.ATTEMPT in stages else stages[0]
        run.warn(
            "contradictory_circumstances",
            "circumstances",
            f"{'、'.join(c.label for c in stages)}是互相排斥的犯罪形态：按{keep.label}计算",
        )
        for c in stages:
            if c is not keep:
                codes.discard(c)
    if CircumstanceCode.MAJOR_MERITORIOUS in codes and CircumstanceCode.MERITORIOUS in codes:
        codes.discard(CircumstanceCode.MERITORIOUS)
    role = defendant.role
    if role in (Role.ACCESSORY, Role.COERCED) and role not in run.catalogue.roles:
        run.warn("unpriced_role", "role", f"{role.label}没有调节规则")
    return _Circumstances(codes=codes, juvenile_under16=age is not None and age < 16, role=role)


def _first_tier(
    run: _Run, spec: ChargeSpec, value: float, c: _Circumstances
) -> tuple[float, list[GuidelineStep], bool]:
    """Multiplicative adjustments; returns the value, the steps and whether 减轻 applies."""
    cat = run.catalogue
    steps: list[GuidelineStep] = []
    mitigation = False
    items: list[tuple[str, str, float, CircumstanceCode | None, bool]] = []
    if c.role in cat.roles and c.role in (Role.ACCESSORY, Role.COERCED):
        r = cat.roles[c.role]
        items.append((c.role.label, r.basis, r.ratio, None, r.mitigation))
    for code in (
        CircumstanceCode.JUVENILE,
        CircumstanceCode.ELDERLY,
        CircumstanceCode.DISABILITY,
        CircumstanceCode.PREPARATION,
        CircumstanceCode.ATTEMPT,
        CircumstanceCode.DISCONTINUATION,
    ):
        if code not in c.codes:
            continue
        rule = cat.circumstances[code]
        ratio, basis, label = rule.ratio, rule.basis, code.label
        if code is CircumstanceCode.JUVENILE and c.juvenile_under16:
            ratio, basis, label = (
                cat.method.juvenile_under16_ratio,
                cat.method.juvenile_source,
                "未成年人犯罪（不满十六周岁）",
            )
        if code is CircumstanceCode.ELDERLY and not spec.intentional:
            ratio = min(ratio, -0.35)
            basis += "；过失犯罪 减少20%-50%"
        items.append((label, basis, ratio, code, rule.mitigation))
    for label, basis, ratio, code, mit in items:
        before = value
        value *= 1 + ratio
        mitigation = mitigation or mit
        steps.append(
            GuidelineStep(
                stage="first_tier",
                rule=f"{label}：基准刑乘以{1 + ratio:.2f}",
                basis=basis,
                circumstance=code,
                ratio=ratio,
                months=value - before,
                value_months=value,
                charge=spec.name,
            )
        )
    return value, steps, mitigation


def _second_tier(
    run: _Run, spec: ChargeSpec, value: float, c: _Circumstances
) -> tuple[float, list[GuidelineStep], bool]:
    """Additive adjustments on the first-tier result (同向相加、逆向相减), without double counting."""
    cat = run.catalogue
    method = cat.method
    codes = c.codes
    parts: list[tuple[str, str, float, CircumstanceCode | None, float | None]] = []
    mitigation = False
    notes: list[GuidelineStep] = []

    comp_and_forgive = CircumstanceCode.COMPENSATION in codes and CircumstanceCode.FORGIVENESS in codes
    reconciliation = CircumstanceCode.RECONCILIATION in codes
    plea = CircumstanceCode.PLEA_AGREEMENT in codes
    for code in (
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
    ):
        if code not in codes:
            continue
        rule = cat.circumstances[code]
        if code is CircumstanceCode.COURT_PLEA and plea:
            notes.append(_note(spec, code, "当庭自愿认罪已为认罪认罚所包含，不重复评价", method.plea_source, value))
            continue
        if code in (CircumstanceCode.COMPENSATION, CircumstanceCode.FORGIVENESS) and reconciliation:
            notes.append(_note(spec, code, f"{code.label}已为刑事和解所包含，不重复评价", rule.basis, value))
            continue
        if code is CircumstanceCode.FORGIVENESS and comp_and_forgive:
            continue
        if code is CircumstanceCode.COMPENSATION and comp_and_forgive:
            parts.append(
                ("积极赔偿并取得谅解", method.compensation_source, method.compensation_with_forgiveness, code, None)
            )
            continue
        if code is CircumstanceCode.PRIOR_RECORD and CircumstanceCode.RECIDIVIST in codes:
            notes.append(_note(spec, code, "前科已作为累犯评价，不重复评价", rule.basis, value))
            continue
        ratio = rule.ratio
        basis = rule.basis
        if code is CircumstanceCode.RESTITUTION and spec.family.value == "violence":
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

    steps = list(notes)
    base = value
    total = 0.0
    for label, basis, ratio, code, min_months in parts:
        months = ratio * base
        rule_text = f"{label}：调节基准刑{ratio:+.0%}"
        if min_months is not None and ratio > 0 and months < min_months:
            months = min_months
            rule_text += f"，不少于{min_months:g}个月"
        total += months
        steps.append(
            GuidelineStep(
                stage="second_tier",
                rule=rule_text,
                basis=basis,
                circumstance=code,
                ratio=ratio,
                months=months,
                value_months=base + total,
                charge=spec.name,
            )
        )
    value = base + total
    floor_share = 0.1
    if value < base * floor_share:
        value = base * floor_share
        steps.append(
            GuidelineStep(
                stage="second_tier",
                rule="从宽调节合计超过基准刑的90%，按基准刑的10%计算",
                basis="derived: 调节结果不为零或负数",
                value_months=value,
                charge=spec.name,
            )
        )
    return value, steps, mitigation


def _note(spec: ChargeSpec, code: CircumstanceCode, rule: str, basis: str, value: float) -> GuidelineStep:
    return GuidelineStep(
        stage="second_tier",
        rule=rule,
        basis=basis,
        circumstance=code,
        ratio=0.0,
        months=0.0,
        value_months=value,
        charge=spec.name,
    )


def _statutory(spec: ChargeSpec, tier: Tier, name: str | None = None) -> StatutoryRange:
    return StatutoryRange(
        charge=name or spec.name,
        article=spec.article,
        tier_label=tier.label,
        min_months=tier.min_months,
        max_months=tier.max_months,
        min_kind=tier.min_kind,
        max_kind=tier.max_kind,
    )


def _calculate_charge(
    run: _Run, spec: ChargeSpec, facts: _Facts, circ: _Circumstances, *, recognised: bool, name: str
) -> tuple[ChargeCalculation, Tier]:
    if recognised:
        index, tier_step = _select_tier(run, spec, facts)
        tier = spec.tiers[index]
        lower = spec.tiers[index - 1] if index > 0 else None
    else:
        tier = spec.tiers[0]
        lower = None
        tier_step = GuidelineStep(
            stage="tier",
            rule=f"{name}罪不在罪名目录中：按{tier.label}（{_tier_text(tier)}）估计",
            basis=tier.start_source,
            charge=name,
        )
    derived = spec.derived or tier.derived
    start, start_step = _starting_point(run, spec, tier, derived)
    for s in (tier_step, start_step):
        s.charge = name
    baseline, base_steps = _baseline(run, spec, tier, start, facts)
    value, first_steps, mit1 = _first_tier(run, spec, baseline, circ)
    value, second_steps, mit2 = _second_tier(run, spec, value, circ)
    steps = [tier_step, start_step, *base_steps, *first_steps, *second_steps]
    mitigation = mit1 or mit2
    floor = tier.floor_months
    if mitigation and floor > 1:
        floor = lower.floor_months if lower is not None else (1.0 if tier.allows_detention else 6.0)
    ceiling = tier.ceiling_months
    kind = SentenceKind.FIXED_TERM
    margin = run.catalogue.method.life_margin_months
    adjusted: float | None = value
    if tier.max_kind in (SentenceKind.LIFE, SentenceKind.DEATH) and value >= ceiling + margin:
        kind = SentenceKind.LIFE
        adjusted = None
        steps.append(
            GuidelineStep(
                stage="clamp",
                rule=f"调节结果{_months_text(value)}超过有期徒刑上限十五年，本档可判处无期徒刑",
                basis=f"{spec.statutory_source}；{run.catalogue.method.life_source}",
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
            GuidelineStep(
                stage="clamp",
                rule=f"{why}：{_months_text(value)} → {_months_text(clamped)}",
                basis=f"{spec.statutory_source}；刑法第63条" if mitigation else spec.statutory_source,
                months=clamped - value,
                value_months=clamped,
                charge=name,
            )
        )
        adjusted = clamped
    if adjusted is not None:
        if adjusted < 6 and tier.allows_detention:
            kind = SentenceKind.DETENTION
        elif adjusted < 6:
            adjusted = 6.0
    statutory = _statutory(spec, tier, name)
    calc = ChargeCalculation(
        charge=name,
        statutory=statutory,
        starting_point_months=start,
        baseline_months=baseline,
        adjusted_months=adjusted,
        kind=kind,
        steps=steps,
        derived=derived,
        recognised=recognised,
        mitigation=mitigation,
    )
    calc.fine_yuan = _fine(spec, tier, adjusted, facts) if recognised else None
    return calc, tier


def _fine(spec: ChargeSpec, tier: Tier, months: float | None, facts: _Facts) -> int | None:
    if not spec.carries_fine or tier.fine is FinePolicy.NONE or spec.fine is None:
        return None
    rule = spec.fine
    if rule.amount_ratio is not None and facts.amount_yuan:
        estimate = rule.amount_ratio * facts.amount_yuan
    else:
        estimate = rule.per_month_yuan * (months if months is not None else 180)
    estimate = max(estimate, rule.min_yuan)
    if rule.max_yuan is not None:
        estimate = min(estimate, rule.max_yuan)
    step = 1000 if estimate >= 1000 else 100
    return int(round(estimate / step) * step)


def _combine(run: _Run, calcs: list[ChargeCalculation]) -> tuple[SentenceKind, float | None, list[GuidelineStep]]:
    """数罪并罚 (刑法第69条): between the highest term and the sum, capped."""
    if len(calcs) == 1:
        return calcs[0].kind, calcs[0].adjusted_months, []
    method = run.catalogue.method
    if any(c.kind is SentenceKind.LIFE for c in calcs):
        return (
            SentenceKind.LIFE,
            None,
            [
                GuidelineStep(
                    stage="combine", rule="数罪中有判处无期徒刑的，执行无期徒刑", basis="刑法第69条", value_months=None
                )
            ],
        )
    terms = [(c.kind, c.adjusted_months or 0.0) for c in calcs]
    fixed = [m for k, m in terms if k is SentenceKind.FIXED_TERM]
    steps: list[GuidelineStep] = []
    if fixed:
        kind = SentenceKind.FIXED_TERM
        if len(fixed) < len(terms):
            steps.append(
                GuidelineStep(
                    stage="combine", rule="数罪中有判处有期徒刑和拘役的，执行有期徒刑", basis="刑法第69条第2款"
                )
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
        GuidelineStep(
            stage="combine",
            rule=(
                f"总和刑期{_months_text(total)}以下、数刑中最高刑期{_months_text(highest)}以上"
                f"（上限{_months_text(cap)}），酌定执行刑期"
            ),
            basis=f"刑法第69条；{method.combine_source}",
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
    province = None
    if case is not None:
        province = case.province or (case.court.province if case.court else None)
    run = _Run(catalogue, province)
    facts = _facts(defendant, catalogue)
    for drug in facts.unknown_drugs:
        run.warn("unknown_drug", "quantities.drug_grams", f"毒品“{drug}”没有折算标准，未计入数量")
    circ = _settle_circumstances(run, defendant)

    names: list[str] = []
    seen: set[str] = set()
    calcs: list[ChargeCalculation] = []
    tiers: list[Tier] = []
    specs: list[ChargeSpec | None] = []
    positions = {c.name: i for i, c in reversed(list(enumerate(defendant.charges)))}
    for given, spec in catalogue.resolve_all(defendant.charge_names):
        key = spec.name if spec else given.strip().removesuffix("罪")
        if key in seen:
            continue
        seen.add(key)
        names.append(key)
        if spec is None:
            field_ = f"charges[{positions.get(given, 0)}]"
            if catalogue.fallback is None:
                run.warn("unknown_charge", field_, f"罪名“{given}”不在罪名目录中，无法计算")
                continue
            run.warn(
                "unknown_charge",
                field_,
                f"罪名“{given}”不在罪名目录（{catalogue.version}）中：按最常见的法定刑幅度估计，幅度加宽",
            )
            spec = ChargeSpec(
                name=key,
                article="?",
                family="other",
                tiers=[catalogue.fallback],
                derived=True,
                statutory_source="未收录：" + catalogue.fallback.start_source,
            )
            calc, tier = _calculate_charge(run, spec, facts, circ, recognised=False, name=key)
        else:
            calc, tier = _calculate_charge(run, spec, facts, circ, recognised=True, name=spec.name)
        calcs.append(calc)
        tiers.append(tier)
        specs.append(spec)
    if not defendant.charges:
        run.warn("no_charges", "charges", "被告人没有罪名，无法计算")

    method = catalogue.method
    steps = [s for c in calcs for s in c.steps]
    if not calcs:
        return GuidelineResult(
            defendant=defendant.name,
            charges=names,
            statutory=None,
            charge_results=[],
            low_months=None,
            point_months=None,
            high_months=None,
            kind=SentenceKind.FIXED_TERM,
            form=SentenceForm.CUSTODY,
            probation_eligible=False,
            fine_yuan=None,
            steps=steps,
            warnings=run.warnings,
            ruleset_version=catalogue.version,
            band=method.max_band,
        )

    kind, point, combine_steps = _combine(run, calcs)
    steps += combine_steps
    worst = max(range(len(calcs)), key=lambda i: _severity(calcs[i]))
    statutory = calcs[worst].statutory

    fines = [c.fine_yuan for c in calcs if c.fine_yuan]
    fine = sum(fines) if fines else None

    derived = any(c.derived for c in calcs)
    widening = {w.code for w in run.warnings if w.code != "derived_rule"}
    band = method.discretion_band + method.warning_widening * len(widening) + (method.derived_band if derived else 0.0)
    band = min(band, method.max_band)
    if derived:
        run.warn(
            "derived_rule",
            None,
            "部分罪名的量刑起点由法定刑幅度推定（指导意见未规定），幅度加宽",
        )

    low = high = None
    probation_eligible = False
    if kind is SentenceKind.LIFE or point is None:
        form = SentenceForm.LIFE
        steps.append(
            GuidelineStep(
                stage="discretion", rule="结果为无期徒刑，不以月数表示", basis=method.life_source, value_months=None
            )
        )
    else:
        low = max(1.0, point * (1 - band))
        high = point * (1 + band)
        cap = 240.0 if kind is SentenceKind.FIXED_TERM else 12.0
        if len(calcs) == 1 and not widening:
            # One charge, its tier certain: the declared sentence stays inside the statutory tier.
            cap = tiers[0].ceiling_months
            if not calcs[0].mitigation:
                low = max(low, min(tiers[0].floor_months, point))
        high = min(high, max(cap, point))
        steps.append(
            GuidelineStep(
                stage="discretion",
                rule=f"宣告刑幅度：在调节结果上下{band:.0%}以内（{_months_text(low)}至{_months_text(high)}）",
                basis=method.discretion_source
                + ("；每项提示加宽幅度 (derived)" if widening else "")
                + ("；推定起点加宽幅度 (derived)" if derived else ""),
                ratio=band,
                value_months=point,
            )
        )
        form, probation_eligible, form_step = _form(run, specs, point, circ)
        steps.append(form_step)

    return GuidelineResult(
        defendant=defendant.name,
        charges=names,
        statutory=statutory,
        charge_results=calcs,
        low_months=low,
        point_months=point,
        high_months=high,
        kind=kind,
        form=form,
        probation_eligible=probation_eligible,
        fine_yuan=fine,
        steps=steps,
        warnings=run.warnings,
        ruleset_version=catalogue.version,
        band=band,
    )


def _severity(calc: ChargeCalculation) -> tuple[int, float]:
    if calc.kind is SentenceKind.LIFE:
        return (2, 0.0)
    return (1 if calc.kind is SentenceKind.FIXED_TERM else 0, calc.adjusted_months or 0.0)


def _form(
    run: _Run, specs: list[ChargeSpec | None], point: float, circ: _Circumstances
) -> tuple[SentenceForm, bool, GuidelineStep]:
    """实刑 or 缓刑: statutory eligibility (arts. 72, 74), then the signals that courts weigh."""
    method = run.catalogue.method
    codes = circ.codes
    reasons: list[str] = []
    eligible = True
    if point > method.probation_max_months + 0.5:
        eligible = False
        reasons.append(f"刑期超过{format_duration(method.probation_max_months)}")
    if CircumstanceCode.RECIDIVIST in codes:
        eligible = False
        reasons.append("累犯不适用缓刑")
    if not eligible:
        return (
            SentenceForm.CUSTODY,
            False,
            GuidelineStep(
                stage="form",
                rule="不符合缓刑条件：" + "、".join(reasons) + "，建议实刑",
                basis=method.probation_source,
                value_months=point,
            ),
        )
    remorse = sum(c in codes for c in _REMORSE)
    lenient_first = circ.role in (Role.ACCESSORY, Role.COERCED) or any(
        c in codes
        for c in (
            CircumstanceCode.JUVENILE,
            CircumstanceCode.ATTEMPT,
            CircumstanceCode.ELDERLY,
            CircumstanceCode.PREPARATION,
            CircumstanceCode.DISCONTINUATION,
        )
    )
    restricted = any(s is not None and s.probation == "restricted" for s in specs)
    record = CircumstanceCode.PRIOR_RECORD in codes
    likely = (remorse >= 2 or (remorse >= 1 and lenient_first)) and not record
    if restricted and CircumstanceCode.JUVENILE not in codes:
        likely = False
        reasons.append("该罪从严掌握缓刑")
    if record:
        reasons.append("有前科")
    if likely:
        rule = "符合缓刑条件，且有悔罪表现（" + "、".join(c.label for c in _REMORSE if c in codes) + "），可适用缓刑"
        form = SentenceForm.PROBATION
    else:
        rule = "符合缓刑的刑期条件" + ("，但" + "、".join(reasons) if reasons else "，悔罪情节不足") + "，建议实刑"
        form = SentenceForm.CUSTODY
    return (
        form,
        True,
        GuidelineStep(
            stage="form",
            rule=rule,
            basis=method.probation_source + "; derived: 悔罪情节 ≥2 项 (或 1 项且有第一层次从宽)",
            value_months=point,
        ),
    )
