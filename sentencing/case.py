"""The case model: a multi-defendant criminal case from raw judgment text to model input.

What is known before judgment (facts, indicted charges, circumstances, court) is kept apart from
the outcome (each defendant's ``sentence``): :meth:`Case.before_judgment` is what any model or
index may see as input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Set as AbstractSet
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticSerializationError

from sentencing.sentence import Sentence

CASE_SCHEMA_VERSION = "1"

_M = TypeVar("_M", bound=BaseModel)
_SLOTS = BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__
_set_fields_set = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


def trusted(cls: type[_M], values: dict[str, Any], fields_set: AbstractSet[str] | None = None) -> _M:
    """``cls(**values)`` without validation, for values the code itself made, already of the fields'
    types, every field given in declaration order (a model with no extra or private attributes).

    ``fields_set``: the fields recorded as set (``model_dump(exclude_unset=True)``), by default the
    keys of ``values``; the validating constructor records only those it was given.

    Parsing a judgment builds about twenty small models, a guideline calculation a dozen a
    defendant, predicting a case some forty, a recommendation thirty similar cases: validation
    costs more than computing the values there. pydantic's ``model_construct`` resolves aliases
    and defaults field by field and is slower still; the instance slots are set through their
    descriptors, as ``model_construct`` sets them.
    """
    m = object.__new__(cls)
    _set_dict(m, values)
    _set_fields_set(m, set(values if fields_set is None else fields_set))
    _set_extra(m, None)
    _set_private(m, None)
    return m


class Evidence(BaseModel):
    """Where an extracted value came from (provenance): a span of one of the case's texts."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="which text: 'facts', 'reasoning', 'judgment', 'header' or 'document'")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str

    @classmethod
    def of(cls, source: str, start: int, end: int, text: str) -> Evidence:
        """The evidence of a span a parser found (``start``/``end`` from a match, ``text`` the slice)."""
        return trusted(cls, {"source": source, "start": start, "end": end, "text": text})


class Role(StrEnum):
    """Role in a joint crime (共同犯罪)."""

    PRINCIPAL = "principal"  # 主犯
    ACCESSORY = "accessory"  # 从犯
    COERCED = "coerced"  # 胁从犯
    INSTIGATOR = "instigator"  # 教唆犯
    SOLE = "sole"  # 单独犯罪 (no joint crime)

    @property
    def label(self) -> str:
        return _ROLE_LABELS[self.value]


_ROLE_LABELS = {
    "principal": "主犯", "accessory": "从犯", "coerced": "胁从犯", "instigator": "教唆犯", "sole": "单独犯罪",
}


class CircumstanceCode(StrEnum):
    """Sentencing circumstances (量刑情节) of DOMAIN.md §2; the guideline engine prices each."""

    SURRENDER = "surrender"  # 自首
    CONFESSION = "confession"  # 坦白
    COURT_PLEA = "court_plea"  # 当庭自愿认罪
    PLEA_AGREEMENT = "plea_agreement"  # 认罪认罚
    MERITORIOUS = "meritorious"  # 立功
    MAJOR_MERITORIOUS = "major_meritorious"  # 重大立功
    RECIDIVIST = "recidivist"  # 累犯
    PRIOR_RECORD = "prior_record"  # 前科
    RESTITUTION = "restitution"  # 退赃、退赔
    COMPENSATION = "compensation"  # 赔偿
    FORGIVENESS = "forgiveness"  # 取得谅解
    RECONCILIATION = "reconciliation"  # 刑事和解
    ATTEMPT = "attempt"  # 未遂
    DISCONTINUATION = "discontinuation"  # 中止
    PREPARATION = "preparation"  # 预备
    JUVENILE = "juvenile"  # 未成年 (under 18 at the time of the crime)
    ELDERLY = "elderly"  # 年满七十五周岁
    VULNERABLE_VICTIM = "vulnerable_victim"  # 侵害未成年人、老人、残疾人、孕妇等弱势人员
    DISASTER_TIME = "disaster_time"  # 在重大自然灾害、预防控制突发传染病疫情等期间故意犯罪
    DISABILITY = "disability"  # 又聋又哑的人或者盲人

    @property
    def label(self) -> str:
        return CIRCUMSTANCE_LABELS[self]


CIRCUMSTANCE_LABELS: dict[CircumstanceCode, str] = {
    CircumstanceCode.SURRENDER: "自首",
    CircumstanceCode.CONFESSION: "坦白",
    CircumstanceCode.COURT_PLEA: "当庭自愿认罪",
    CircumstanceCode.PLEA_AGREEMENT: "认罪认罚",
    CircumstanceCode.MERITORIOUS: "立功",
    CircumstanceCode.MAJOR_MERITORIOUS: "重大立功",
    CircumstanceCode.RECIDIVIST: "累犯",
    CircumstanceCode.PRIOR_RECORD: "前科",
    CircumstanceCode.RESTITUTION: "退赃退赔",
    CircumstanceCode.COMPENSATION: "赔偿损失",
    CircumstanceCode.FORGIVENESS: "取得谅解",
    CircumstanceCode.RECONCILIATION: "刑事和解",
    CircumstanceCode.ATTEMPT: "未遂",
    CircumstanceCode.DISCONTINUATION: "中止",
    CircumstanceCode.PREPARATION: "预备",
    CircumstanceCode.JUVENILE: "未成年人犯罪",
    CircumstanceCode.ELDERLY: "已满七十五周岁",
    CircumstanceCode.VULNERABLE_VICTIM: "侵害弱势人员",
    CircumstanceCode.DISASTER_TIME: "灾害、疫情期间犯罪",
    CircumstanceCode.DISABILITY: "又聋又哑或盲人",
}


class Circumstance(BaseModel):
    """One sentencing circumstance of one defendant, with the text it was read from."""

    model_config = ConfigDict(frozen=True)

    code: CircumstanceCode
    evidence: Evidence | None = None


class AggravationCode(StrEnum):
    """Facts the Criminal Law names as selecting a heavier tier (加重处罚情节), not priced as circumstances:
    入户抢劫 takes a robbery from three to ten years to ten years or more (刑法第263条)."""

    HOME_INVASION = "home_invasion"  # 入户抢劫
    PUBLIC_TRANSPORT = "public_transport"  # 在公共交通工具上抢劫
    FINANCIAL_INSTITUTION = "financial_institution"  # 抢劫银行或者其他金融机构
    ARMED_WITH_GUN = "armed_with_gun"  # 持枪抢劫
    IMPERSONATING_POLICE = "impersonating_police"  # 冒充军警人员抢劫
    GANG_RAPE = "gang_rape"  # 二人以上轮奸
    PUBLIC_RAPE = "public_rape"  # 在公共场所当众强奸
    ARMED_AFFRAY = "armed_affray"  # 持械聚众斗殴
    HIT_AND_RUN = "hit_and_run"  # 交通运输肇事后逃逸

    @property
    def label(self) -> str:
        return {
            "home_invasion": "入户抢劫", "public_transport": "在公共交通工具上抢劫",
            "financial_institution": "抢劫银行或者其他金融机构", "armed_with_gun": "持枪抢劫",
            "impersonating_police": "冒充军警人员抢劫", "gang_rape": "二人以上轮奸",
            "public_rape": "在公共场所当众强奸", "armed_affray": "持械聚众斗殴", "hit_and_run": "交通运输肇事后逃逸",
        }[self.value]


class Aggravation(BaseModel):
    """One tier-selecting fact of one defendant, with the text it was read from."""

    model_config = ConfigDict(frozen=True)

    code: AggravationCode
    evidence: Evidence | None = None


class InjuryGrade(StrEnum):
    """Forensic injury grades (人体损伤程度鉴定标准), lightest first."""

    MINOR = "minor"  # 轻微伤
    LIGHT_2 = "light_2"  # 轻伤二级
    LIGHT_1 = "light_1"  # 轻伤一级
    SERIOUS_2 = "serious_2"  # 重伤二级
    SERIOUS_1 = "serious_1"  # 重伤一级
    DEATH = "death"  # 死亡

    @property
    def label(self) -> str:
        return {
            "minor": "轻微伤",
            "light_2": "轻伤二级",
            "light_1": "轻伤一级",
            "serious_2": "重伤二级",
            "serious_1": "重伤一级",
            "death": "死亡",
        }[self.value]

    @property
    def rank(self) -> int:
        return list(InjuryGrade).index(self)


class Measure(BaseModel):
    """A quantity read from the facts, with its provenance."""

    model_config = ConfigDict(frozen=True)

    value: float
    evidence: Evidence | None = None


class Injury(BaseModel):
    model_config = ConfigDict(frozen=True)

    grade: InjuryGrade
    count: int = Field(default=1, ge=1)
    evidence: Evidence | None = None


class Quantities(BaseModel):
    """The amounts that select a statutory tier and raise the baseline (基准刑)."""

    amount_yuan: Measure | None = None
    """犯罪数额: money or value involved (stolen, defrauded, extorted, raised…)."""
    drug_grams: dict[str, Measure] = Field(default_factory=dict)
    """Drug weight by drug (``海洛因``, ``甲基苯丙胺``, ``氯胺酮``…), in grams."""
    injuries: list[Injury] = Field(default_factory=list)
    occurrences: Measure | None = None
    """Number of offences (次数): 多次盗窃, 容留他人吸毒 N 次…"""
    deaths: Measure | None = None
    """Number of people killed (交通肇事, 故意伤害致死…)."""
    blood_alcohol_mg_per_100ml: Measure | None = None
    """危险驾驶: blood alcohol in mg/100 ml."""

    def is_empty(self) -> bool:
        return not (
            self.amount_yuan or self.drug_grams or self.injuries or self.occurrences or self.deaths
            or self.blood_alcohol_mg_per_100ml
        )


def _plain_measures(q: Quantities) -> bool:
    """Whether every float of ``q`` is written alike by ``json`` and pydantic (see ``Case.to_json_line``)."""
    measures = [q.amount_yuan, q.occurrences, q.deaths, q.blood_alcohol_mg_per_100ml, *q.drug_grams.values()]
    return all(m is None or _plain_float(m.value) for m in measures)


def _plain_float(value: float) -> bool:
    return value == 0 or 1e-4 <= abs(value) < math.inf


class Charge(BaseModel):
    """A charge (罪名) as indicted or convicted, named without the trailing 罪 (``盗窃``)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=60)
    evidence: Evidence | None = None
    tier: str | None = Field(default=None, min_length=1, max_length=200, exclude_if=lambda v: v is None)
    """The statutory tier (法定刑幅度) the prosecutor holds applies, by its catalogue label (``情节严重的``):
    for the tiers no fact the guideline reads can select (情节较轻, 情节严重…). None: the facts select it,
    and the field is left out of dumps, so stored cases and their content hashes are as they were."""
    tier_evidence: Evidence | None = Field(default=None, exclude_if=lambda v: v is None)
    """Where the tier was read: the case's texts saying the conduct reaches it (``盗窃他人财物，数额巨大，
    其行为已构成盗窃罪``, sentencing.parsing.extract). None: stated by the caller, or no tier."""

    quantities: Quantities | None = Field(default=None, exclude_if=lambda v: v is None)
    """Quantities of this charge alone (数罪: 盗窃 5,000 yuan beside 诈骗 100,000), priced for it in place of
    the defendant's :attr:`Defendant.quantities`. None: the defendant's quantities serve every charge,
    and the field is left out of dumps."""

    @property
    def tier_read(self) -> bool:
        """Whether :attr:`tier` was read from the case's texts (案情写明), not given by the caller (检察官认定)."""
        return self.tier_evidence is not None


class ChargeSentence(BaseModel):
    """The sentence for one crime of a defendant convicted of several (before 决定执行)."""

    charge: str
    sentence: Sentence
    evidence: Evidence | None = None


# An organisation's name ends with its kind, before any parenthesised form (``（普通合伙）``).
_UNIT_NAME = re.compile(
    r"(?:公司|厂|集团|中心|合作社|商行|商店|企业|单位|医院|学校|协会|银行|事务所|研究所|研究院|酒店|宾馆|超市|"
    r"门市部|经营部|工作室|加工点|养殖场|农场|林场|矿|站)(?:[（(][^）)]{1,12}[）)])?$"
)


def looks_like_unit(name: str) -> bool:
    """Whether a defendant's name is an organisation's (``扬州某某股份有限公司``), not a person's.

    Judgments label a corporate defendant 被告单位 in their header; where only the name is known
    (an API request, a name read from the judgment section) the name says it: an organisation's
    name ends with its kind (公司, 厂, 合作社…). A person's name of four characters or more ending
    so is rare; the API response says when the name decided, and the request's ``unit`` overrides.
    """
    return len(name) >= 4 and _UNIT_NAME.search(name) is not None


class Defendant(BaseModel):
    """One defendant (被告人) of a case."""

    name: str = Field(min_length=1, max_length=60)
    is_unit: bool = False
    """被告单位: a company or other organisation (刑法第三十条). The law punishes it with a fine only
    (第三十一条), never a term, so neither the guideline arithmetic nor the learned model applies."""
    charges: list[Charge] = Field(default_factory=list)
    role: Role = Role.SOLE
    role_evidence: Evidence | None = None
    circumstances: list[Circumstance] = Field(default_factory=list)
    aggravations: list[Aggravation] = Field(default_factory=list, exclude_if=lambda v: not v)
    """Facts that select a heavier tier (入户抢劫, 轮奸…). Empty lists are left out of dumps, so stored
    cases and their content hashes are as they were."""
    quantities: Quantities = Field(default_factory=Quantities)
    age: int | None = Field(default=None, ge=0, le=120)
    """Age at the time of the crime, when the text gives it."""
    pregnant: bool | None = Field(default=None, exclude_if=lambda v: v is None)
    """审判的时候怀孕的妇女 (刑法第49条: no 死刑, 死缓 included; 第72条: 应当宣告缓刑 where its conditions
    hold), pregnancy in custody before trial included. None: not known (left out of dumps, so stored
    cases and their hashes are unchanged)."""
    # Outcome: never a model input.
    sentence: Sentence | None = None
    sentence_evidence: Evidence | None = None
    charge_sentences: list[ChargeSentence] = Field(default_factory=list)

    @property
    def charge_names(self) -> list[str]:
        return [c.name for c in self.charges]

    def has(self, code: CircumstanceCode) -> bool:
        return any(c.code is code for c in self.circumstances)

    @property
    def circumstance_codes(self) -> set[CircumstanceCode]:
        return {c.code for c in self.circumstances}

    @property
    def aggravation_codes(self) -> set[AggravationCode]:
        return {a.code for a in self.aggravations}


class CourtLevel(StrEnum):
    BASIC = "basic"  # 基层人民法院
    INTERMEDIATE = "intermediate"  # 中级人民法院
    HIGH = "high"  # 高级人民法院
    SUPREME = "supreme"  # 最高人民法院
    SPECIAL = "special"  # 专门人民法院 (军事、铁路运输、海事…)


class Court(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    province: str | None = Field(default=None, description="province code, e.g. 'JS' (see sentencing.regions)")
    city: str | None = None
    level: CourtLevel | None = None
    evidence: Evidence | None = None


class Case(BaseModel):
    """One criminal case: the court, the facts and its defendants."""

    id: str = Field(min_length=1, max_length=200)
    source: str = Field(
        default="cases", description="importer that produced it: judge, lawbench, cail2018, cases, synthetic"
    )
    synthetic: bool = False
    """True for the generated demo corpus: never mistake it for a real judgment."""
    case_number: str | None = None
    """案号, e.g. ``（2018）苏0482刑初260号``."""
    court: Court | None = None
    province: str | None = None
    """Province code of the deciding court (``JS``); redundant with ``court`` for quick filtering."""
    date: dt.date | None = None
    facts: str = ""
    """The facts (指控/经审理查明), with the prosecutor's recommendation (建议判处…) removed."""
    reasoning: str = ""
    """本院认为: the court's findings on circumstances; no sentence in it."""
    judgment: str = ""
    """判决如下 section: the outcome text. Never a model input."""
    defendants: list[Defendant] = Field(default_factory=list)
    schema_version: str = CASE_SCHEMA_VERSION

    def before_judgment(self) -> Case:
        """The case as a prosecutor knows it before judgment: no sentences, no judgment text.

        A case that holds no outcome (every query the service gets) is returned as it is: the deep
        copy cost about 0.1 ms per similar-case search.
        """
        if not self.judgment and all(
            d.sentence is None and d.sentence_evidence is None and not d.charge_sentences for d in self.defendants
        ):
            return self
        return self.model_copy(
            update={
                "judgment": "",
                "defendants": [
                    d.model_copy(update={"sentence": None, "sentence_evidence": None, "charge_sentences": []})
                    for d in self.defendants
                ],
            },
            deep=True,
        )

    def content_hash(self) -> str:
        """A stable hash of the case's content, for de-duplication and training-data hashes."""
        payload = self.model_dump_json(exclude={"schema_version"})
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def known_province(self) -> str | None:
        """The case's province, else its court's; None when neither is known."""
        return self.province or (self.court.province if self.court else None)

    @property
    def charge_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for d in self.defendants:
            for c in d.charges:
                seen.setdefault(c.name, None)
        return list(seen)

    def to_json_line(self) -> str:
        """The canonical JSON line (what ``sentencing parse`` prints and the ``cases`` format reads).

        The canonical form is ``json.dumps(model_dump(mode="json", exclude_none=True),
        ensure_ascii=False, separators=(",", ":"))``. pydantic's own serialiser writes the same bytes
        about twice as fast, except for floats: it writes ``0.00001`` where ``json`` writes ``1e-05``
        (below 1e-4) and ``null`` for NaN and infinities. Only :class:`Measure` holds floats, so a
        case with such a measure takes the reference path.
        """
        fast = self._serialised()
        return fast.decode() if fast is not None else self._reference_json_line()

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json_line` and its newline in UTF-8, for bulk writers: no round trip through ``str``.

        A lone surrogate is written as its JSON escape (``\\ud800``), which reads back as the same text.
        """
        fast = self._serialised()
        if fast is not None:
            return fast + b"\n"
        return (self._reference_json_line() + "\n").encode("utf-8", "backslashreplace")

    def _serialised(self) -> bytes | None:
        """pydantic's JSON of the case where it is the canonical form, else None (see :meth:`to_json_line`)."""
        if not all(_plain_measures(d.quantities) for d in self.defendants):
            return None
        try:
            return self.__pydantic_serializer__.to_json(self, exclude_none=True)
        except PydanticSerializationError:  # a lone surrogate (``"\\ud800"`` in the input): json copes
            return None

    def _reference_json_line(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), ensure_ascii=False, separators=(",", ":"))
