"""The versioned JSON contract of the HTTP API: every request and response body is one of these.

Input models are strict about what they accept (bad input is a 422 naming the field, never a
guess); output models are what prosecutors and integrations read, so each field says what it means.
Domain types (``Sentence``, ``Evidence``, ``Quantities``…) are reused from :mod:`sentencing`.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from sentencing.case import AggravationCode, CircumstanceCode, Evidence, InjuryGrade, Quantities, Role
from sentencing.regions import UnknownProvince, province
from sentencing.sentence import Sentence, SentenceForm, SentenceKind

API_VERSION = "1"

_ALLOWED_CONTROL = {"\n", "\r", "\t"}


def _no_control_characters(value: str) -> str:
    """Reject C0/C1 control characters (other than line breaks and tabs): they are never legal text."""
    for offset, char in enumerate(value):
        if char not in _ALLOWED_CONTROL and unicodedata.category(char) == "Cc":
            raise ValueError(f"contains control character U+{ord(char):04X} at offset {offset}")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value.strip()


def _charge_name(value: str) -> str:
    """Charges are named without the trailing 罪 (``盗窃罪`` → ``盗窃``), as in :class:`sentencing.case.Charge`."""
    value = value.strip()
    if value.endswith("罪") and len(value) > 1:
        value = value[:-1]
    if not value:
        raise ValueError("must name a charge")
    return value


def _province_code(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return province(value.strip()).code
    except UnknownProvince:
        raise ValueError(f"unknown province {value!r}: use a code (JS), abbreviation (苏) or name (江苏)") from None


Text = Annotated[str, AfterValidator(_no_control_characters)]
ShortText = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_no_control_characters),
                      AfterValidator(_not_blank)]
ChargeName = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_no_control_characters),
                       AfterValidator(_charge_name)]
ProvinceCode = Annotated[str | None, Field(default=None, max_length=20), AfterValidator(_province_code)]
TierLabel = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters),
                      AfterValidator(_not_blank)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=200_000)


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


# --------------------------------------------------------------------------- requests


class InjuryInput(_Input):
    grade: InjuryGrade
    count: int = Field(default=1, ge=1, le=1000)


class QuantitiesInput(_Input):
    """Known amounts; leave the whole object out to have them read from the facts."""

    amount_yuan: float | None = Field(default=None, ge=0, le=1e13, description="犯罪数额 in yuan")
    drug_grams: dict[ShortText, Annotated[float, Field(ge=0, le=1e9)]] = Field(
        default_factory=dict, max_length=20, description="drug weight by drug name (海洛因, 甲基苯丙胺…)"
    )
    injuries: list[InjuryInput] = Field(default_factory=list, max_length=100)
    occurrences: int | None = Field(default=None, ge=1, le=100_000, description="次数")
    deaths: int | None = Field(default=None, ge=0, le=10_000)
    blood_alcohol_mg_per_100ml: float | None = Field(default=None, ge=0, le=2000)


class DefendantInput(_Input):
    """One defendant. ``role``, ``circumstances`` and ``quantities`` left out (null) are extracted from the
    facts with their text spans; given (even empty) they are taken as stated."""

    name: ShortText
    unit: bool | None = Field(default=None, description=(
        "被告单位 (a company or other organisation): fined only, never a term (刑法第三十一条). "
        "null: read from the name (有限公司, 厂, 合作社…)"))
    charges: list[ChargeName] = Field(min_length=1, max_length=20)
    role: Role | None = None
    circumstances: list[CircumstanceCode] | None = Field(default=None, max_length=len(CircumstanceCode))
    aggravations: list[AggravationCode] | None = Field(default=None, max_length=len(AggravationCode), description=(
        "facts the article names as selecting a heavier tier: " + "; ".join(f"{a.value}: {a.label}"
                                                                            for a in AggravationCode)
        + ". null: read from the facts; given (even empty): taken as stated"))
    quantities: QuantitiesInput | None = None
    age: int | None = Field(default=None, ge=0, le=120, description="age at the time of the crime")
    pregnant: bool | None = Field(default=None, description=(
        "审判时怀孕的妇女, a pregnancy in custody before trial included: no 死刑 or 死缓 (刑法第四十九条); "
        "probation is mandatory for a sentence of 拘役 or up to three years where its conditions hold (第七十二条). "
        "null: read from the facts"))
    tiers: dict[ChargeName, TierLabel] | None = Field(default=None, max_length=20, description=(
        "法定刑幅度 the prosecutor holds applies, by charge (one of ``charges``): the tier's label as the "
        "recommendation's statutory.tier_label or a tier_undetermined warning writes it (情节严重的, 情节较轻的…). "
        "For the tiers no fact can select. Left out, a tier the facts say the conduct reaches (…数额巨大，其行为…) "
        "is taken as stated, and otherwise the quantities select it; given, even empty, the facts are not read for it"))

    charge_quantities: dict[ChargeName, QuantitiesInput] | None = Field(default=None, max_length=20, description=(
        "quantities of one charge alone, by charge (one of ``charges``), for a defendant of several charges whose "
        "amounts belong to different crimes (数罪: 盗窃 5,000 yuan beside 诈骗 100,000): the guideline prices that "
        "charge with them in place of ``quantities``, which then serve the other charges and the learned model. "
        "Left out with ``quantities``, each charge's amount is read where the facts tell every such charge's with its "
        "own act (收受…元, 骗取…元; facts_used.charge_quantities); given, even empty, none is read"))

    @field_validator("tiers", "charge_quantities")
    @classmethod
    def _of_own_charges(cls, by_charge: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        charges = info.data.get("charges") or []
        for charge in by_charge or {}:
            if charge not in charges:
                raise ValueError(f"{charge!r} is not one of this defendant's charges {charges}")
        return by_charge


class CaseInput(_Input):
    """A case as the prosecutor knows it before judgment (no sentence in it)."""

    id: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters)] | None = Field(
        default=None, description="the caller's own reference for the case"
    )
    facts: Annotated[str, Field(min_length=1, max_length=200_000), AfterValidator(_no_control_characters),
                     AfterValidator(_not_blank)]
    court: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_control_characters)] | None = None
    province: ProvinceCode = None
    date: dt.date | None = None
    defendants: list[DefendantInput] = Field(min_length=1, max_length=10_000,
                                             description="at most Settings.max_defendants")

    @field_validator("defendants")
    @classmethod
    def _distinct_names(cls, defendants: list[DefendantInput]) -> list[DefendantInput]:
        seen: set[str] = set()
        for d in defendants:
            if d.name in seen:
                raise ValueError(f"defendant name {d.name!r} appears twice")
            seen.add(d.name)
        return defendants


class BatchRequest(_Input):
    cases: list[dict] = Field(
        min_length=1, max_length=10_000, description="each a CaseInput, validated alone; at most Settings.max_batch"
    )


class SimilarCasesRequest(_Input):
    case: CaseInput
    defendant: ShortText | None = Field(default=None, description="which defendant; default the first")
    k: int = Field(default=10, ge=1, le=100)
    province_scope: Literal["other", "own", "any"] | None = Field(
        default=None, description="'other': other provinces than the case's (the default when it has one); 'own'; "
        "'any' (the default without a province)"
    )


class DecisionRequest(_Input):
    """The prosecutor's final recommendation (量刑建议) for one defendant of an earlier recommendation."""

    defendant: ShortText
    sentence: Sentence
    reason: Annotated[str, Field(max_length=4000), AfterValidator(_no_control_characters)] | None = Field(
        default=None, description="why; required when the sentence departs from the recommended range or form"
    )


PathText = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_no_control_characters)]


class ReloadRequest(_Input):
    """Directories to switch to; left out, the ones serving now are loaded again (after a retrain in place)."""

    model_dir: PathText | None = None
    index_dir: PathText | None = None


# --------------------------------------------------------------------------- responses


class FieldError(_Output):
    field: str = Field(description="dotted path of the offending field, e.g. 'defendants.0.name'")
    message: str


class ErrorBody(_Output):
    code: str
    message: str
    fields: list[FieldError] = Field(default_factory=list)
    request_id: str | None = None


class ErrorResponse(_Output):
    error: ErrorBody


WARNING_CODES: dict[str, str] = {
    # the guideline's (sentencing.guideline)
    "missing_quantity": "a quantity that selects the statutory tier is unknown: the lowest tier is used",
    "below_threshold": "the known quantities do not reach the tier's threshold (another ground may apply)",
    "unknown_charge": "a charge outside the rule set's catalogue: the model alone, or a fallback tier",
    "unknown_drug": "a drug with no conversion standard: its weight is not counted",
    "unknown_tier": "a stated tier (tiers) the charge does not have: the facts select the tier",
    "stated_tier_differs": "the tier stated (tiers) or read from the facts (…数额巨大，其行为…) is used; the "
                           "quantities read select another tier, which the message names",
    "derived_rule": "a starting point derived from the statutory tier, not a guideline clause: wider range",
    "contradictory_circumstances": "circumstances that exclude each other were settled",
    "unpriced_role": "a role with no adjustment rule",
    "no_charges": "no charge: nothing to calculate",
    "amount_unattributed": "one amount (犯罪数额) prices several charges, each with all of it; charge_quantities "
                           "gives each charge its own",
    "harm_unattributed": "deaths or serious injuries beside another charge may be that charge's: the tier of "
                         "无期徒刑或者死刑 they would select (绑架 that kills the hostage) is used only if stated",
    # the service's (serve.recommender)
    "no_criminal_responsibility": "too young to answer for any charge (刑法第17条): no punishment is recommended",
    "age_limits_responsibility": "too young to answer for some charges, or only on conditions (刑法第17条)",
    "pregnant_at_trial": "pregnant at trial: no death penalty (刑法第49条); probation mandatory where its conditions "
                         "hold (第72条)",
    "tier_undetermined": "another tier of the charge rests on facts no quantity shows; it can be stated (tiers)",
    "co_defendant_quantity": "a tier-selecting quantity missing here was read for a co-defendant of the same crime",
    "possible_recidivist": "a stated prior record whose dates may make the defendant a 累犯 (刑法第65条)",
    "drug_reoffender": "a prior drug sentence and a drug charge: 毒品再犯 (刑法第356条)",
    "model": "about the learned range or form: outside the statutory tier, adjusted to the principal's, "
             "a non-custodial form beside its term range, "
             "deferred to the guideline's 无期徒刑, no term where the tier allows none, a charge outside the catalogue",
}
"""Every warning code a recommendation may carry, and what it means: integrators may switch on the code."""


class WarningOut(_Output):
    code: str = Field(description="one of: " + "; ".join(f"{k}: {v}" for k, v in WARNING_CODES.items()))
    field: str | None = None
    message: str


class RangeOut(_Output):
    """The recommended range in months of 有期徒刑/拘役 (point inside); ``confidence`` is its nominal coverage.
    The months are null when the predicted form is life imprisonment or death."""

    low_months: float | None
    point_months: float | None
    high_months: float | None
    confidence: float = Field(ge=0, le=1)


class FormOut(_Output):
    predicted: SentenceForm
    label: str
    probabilities: dict[SentenceForm, float]


class StatutoryOut(_Output):
    """The statutory tier (法定刑幅度) the facts select."""

    charge: str
    article: str
    tier_label: str
    min_months: float | None
    max_months: float | None
    min_kind: SentenceKind | None = None
    max_kind: SentenceKind | None = None


class TierOut(_Output):
    """One statutory tier (法定刑幅度) of a charge; its ``label`` is what a request's ``tiers`` names."""

    label: str
    range_text: str = Field(description="the range as the law writes it (有期徒刑三年至有期徒刑十年)")
    min_months: int | None
    max_months: int | None
    min_kind: SentenceKind
    max_kind: SentenceKind
    selected_by: Literal["facts", "default", "statement"] = Field(description=(
        "facts: a quantity the guideline reads selects it (数额, 数量, 伤情…); default: the tier used when "
        "nothing selects another; statement: no fact selects it, only a stated tier (``tiers``)"))


class ChargeOut(_Output):
    """A charge of the served rule set (罪名目录) with its statutory tiers."""

    name: str
    article: str
    statutory_source: str
    ruleset_version: str
    tiers: list[TierOut]


class GuidelineStepOut(_Output):
    stage: str
    stage_label: str
    rule: str
    basis: str
    circumstance: str | None = None
    ratio: float | None = None
    months: float | None = None
    value_months: float | None = Field(default=None, description="the running value after this step")
    charge: str | None = None


class GuidelineOut(_Output):
    """The guideline arithmetic (量刑指导意见) step by step, and its explanation in Chinese."""

    low_months: float | None
    point_months: float | None
    high_months: float | None
    kind: SentenceKind
    kind_label: str
    form: SentenceForm
    probation_eligible: bool
    fine_yuan: float | None = None
    steps: list[GuidelineStepOut]
    summary_text: str
    explanation_text: str
    ruleset_version: str


class ContributionOut(_Output):
    group: str
    label: str
    months: float


class ExtractedCircumstance(_Output):
    code: CircumstanceCode
    label: str
    source: Literal["input", "extracted"]
    evidence: Evidence | None = None


class ExtractedAggravation(_Output):
    code: AggravationCode
    label: str
    source: Literal["input", "extracted"]
    evidence: Evidence | None = None


class StatedTier(_Output):
    """A statutory tier (法定刑幅度) taken as stated for a charge rather than selected by the quantities."""

    charge: str
    tier: str = Field(description="the tier's label in the served rule set")
    source: Literal["input", "extracted"] = Field(description=(
        "input: the request's ``tiers``; extracted: the facts say the conduct reaches it (…数额巨大，其行为…)"))
    evidence: Evidence | None = None


class ChargeQuantitiesOut(_Output):
    """Quantities of one charge alone (数罪), priced for it in place of the defendant's ``quantities``."""

    charge: str
    quantities: Quantities
    source: Literal["input", "extracted"] = Field(description=(
        "input: the request's ``charge_quantities``; extracted: the facts tell the amount with the charge's own "
        "act (收受…元 for 受贿, 骗取…元 for 诈骗), read only where every charge an amount prices has one"))


class ExtractedFacts(_Output):
    """What the recommendation was computed from, and where each fact came from."""

    unit: bool = Field(default=False, description="被告单位: the outcome is a fine alone (刑法第三十一条)")
    unit_source: Literal["input", "name"] = "name"
    role: Role
    role_label: str
    age: int | None = None
    pregnant: bool = Field(default=False, description="审判时怀孕 (刑法第四十九条、第七十二条), as given or read")
    pregnant_source: Literal["input", "extracted"] = "extracted"
    role_source: Literal["input", "extracted", "default"]
    role_evidence: Evidence | None = None
    circumstances: list[ExtractedCircumstance]
    aggravations: list[ExtractedAggravation] = Field(default_factory=list, description=(
        "facts that selected, or could select, a heavier tier (入户抢劫, 轮奸…), as given or read"))
    quantities: Quantities
    quantities_source: Literal["input", "extracted"]
    stated_tiers: list[StatedTier] = Field(default_factory=list, description=(
        "tiers stated for charges, as given (``tiers``) or read from the facts; they override the quantities"))
    charge_quantities: list[ChargeQuantitiesOut] = Field(default_factory=list, description=(
        "charges priced with quantities of their own, as given (``charge_quantities``) or read from the facts"))


class SimilarCaseOut(_Output):
    case_id: str
    court: str | None = None
    province: str | None = None
    province_name: str | None = None
    date: dt.date | None = None
    charges: list[str]
    defendant: str = Field(description="the defendant's name, masked (张某)")
    sentence: Sentence | None = None
    sentence_text: str | None = None
    score: float
    matched: list[str] = Field(default_factory=list, description="which facts matched")
    tier: str | None = None
    role: str | None = None
    circumstances: list[str] = Field(default_factory=list)
    synthetic: bool = Field(description="true for the generated demo corpus: not a real judgment")


class ProvinceStat(_Output):
    province: str | None = Field(description="province code; null where the judgments do not say")
    province_name: str | None = None
    n: int
    median_months: float | None = None
    share_non_custodial: float | None = None
    reported: bool = Field(description="false when the province's cohort is too small for statistics")


class HistogramBinOut(_Output):
    low_months: int
    high_months: int = Field(description="exclusive")
    count: int


class CohortOut(_Output):
    """Comparable cases as statistics, with their definition; nothing is reported for a cohort too small."""

    definition: dict[str, Any] = Field(description="charge, tier, circumstances, province scope, criteria dropped")
    definition_text: str = Field(description="the definition in Chinese")
    n: int
    reported: bool
    reason: str | None = Field(default=None, description="why nothing is reported, when so")
    median_months: float | None = None
    q1_months: float | None = None
    q3_months: float | None = None
    histogram: list[HistogramBinOut] = Field(default_factory=list)
    share_non_custodial: float | None = None
    by_province: list[ProvinceStat] = Field(default_factory=list)
    excluded: dict[str, int] = Field(default_factory=dict, description="left out of the month statistics, by reason")


class DefendantRecommendation(_Output):
    name: str
    charges: list[str]
    range: RangeOut
    form: FormOut
    fine_yuan: float | None = None
    statutory: StatutoryOut | None = None
    guideline: GuidelineOut | None = Field(description="null when no charge is in the guideline's catalogue")
    explanation: list[ContributionOut] = Field(description="contributions in months, grouped")
    similar_cases: list[SimilarCaseOut]
    cohort: CohortOut | None = None
    facts_used: ExtractedFacts
    warnings: list[WarningOut]


class RecommendationResponse(_Output):
    api_version: str = API_VERSION
    request_id: str
    model_version: str
    ruleset_version: str
    case_id: str | None = None
    defendants: list[DefendantRecommendation]
    warnings: list[WarningOut] = Field(default_factory=list)


class BatchItem(_Output):
    index: int
    ok: bool
    result: RecommendationResponse | None = None
    error: ErrorBody | None = None


class BatchResponse(_Output):
    api_version: str = API_VERSION
    items: list[BatchItem]


class SimilarCasesResponse(_Output):
    api_version: str = API_VERSION
    model_version: str
    defendant: str
    similar_cases: list[SimilarCaseOut]
    cohort: CohortOut | None = None


class CaseDefendantView(_Output):
    name: str
    charges: list[str]
    role: Role
    circumstances: list[CircumstanceCode]
    sentence: Sentence | None = None
    sentence_text: str | None = None


class CaseView(_Output):
    """A stored case with party names masked (张三 → 张某)."""

    api_version: str = API_VERSION
    id: str
    synthetic: bool
    case_number: str | None = None
    court: str | None = None
    province: str | None = None
    date: dt.date | None = None
    facts: str
    defendants: list[CaseDefendantView]


class DecisionResponse(_Output):
    api_version: str = API_VERSION
    request_id: str
    defendant: str
    sentence_text: str
    departs_from_recommendation: bool
    departure: str | None = Field(default=None, description="how it departs from the recommended range or form")
    recorded_at: dt.datetime


class HealthResponse(_Output):
    status: Literal["ok"] = "ok"
    api_version: str = API_VERSION


class ReadyResponse(_Output):
    ready: bool
    model_version: str | None = None
    ruleset_version: str | None = None
    index_size: int | None = None
    loaded_at: dt.datetime | None = None
    reason: str | None = None


class ReloadResponse(_Output):
    api_version: str = API_VERSION
    model_version: str
    ruleset_version: str
    model_dir: str
    index_dir: str
    previous_model_version: str | None = None
    seconds: float
