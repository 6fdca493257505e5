"""The sentence (刑罚): its one representation, and every conversion to and from text and numbers.

A judgment imposes one principal penalty (主刑) per defendant, possibly suspended (缓刑), with
additional penalties (附加刑: 罚金, 没收财产, 剥夺政治权利). Every other module reads and writes
sentences through this module: the parsers, the demo-corpus generator, the metrics and the models.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sentencing.numerals import NUMBER_PATTERN, format_chinese_integer, parse_amount_yuan, parse_int


class SentenceKind(StrEnum):
    """Principal penalty (主刑), or its absence."""

    DEATH = "death"  # 死刑立即执行
    DEATH_SUSPENDED = "death_suspended"  # 死刑，缓期二年执行
    LIFE = "life"  # 无期徒刑
    FIXED_TERM = "fixed_term"  # 有期徒刑
    DETENTION = "detention"  # 拘役
    SURVEILLANCE = "surveillance"  # 管制
    FINE_ONLY = "fine_only"  # 单处罚金
    EXEMPT = "exempt"  # 免予刑事处罚

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]

    @property
    def has_term(self) -> bool:
        return self in (SentenceKind.FIXED_TERM, SentenceKind.DETENTION, SentenceKind.SURVEILLANCE)


_KIND_LABELS = {
    SentenceKind.DEATH: "死刑",
    SentenceKind.DEATH_SUSPENDED: "死刑，缓期二年执行",
    SentenceKind.LIFE: "无期徒刑",
    SentenceKind.FIXED_TERM: "有期徒刑",
    SentenceKind.DETENTION: "拘役",
    SentenceKind.SURVEILLANCE: "管制",
    SentenceKind.FINE_ONLY: "单处罚金",
    SentenceKind.EXEMPT: "免予刑事处罚",
}

_SEVERITY = [
    SentenceKind.EXEMPT,
    SentenceKind.FINE_ONLY,
    SentenceKind.SURVEILLANCE,
    SentenceKind.DETENTION,
    SentenceKind.FIXED_TERM,
    SentenceKind.LIFE,
    SentenceKind.DEATH_SUSPENDED,
    SentenceKind.DEATH,
]


class SentenceForm(StrEnum):
    """What a prosecutor asks first: custody or not (the form of the outcome)."""

    NON_CUSTODIAL = "non_custodial"  # 管制、单处罚金、免予刑事处罚
    PROBATION = "probation"  # 缓刑
    CUSTODY = "custody"  # 实刑 (有期徒刑 or 拘役 served)
    LIFE = "life"  # 无期徒刑
    DEATH = "death"  # 死刑 (including 缓期二年执行)

    @property
    def label(self) -> str:
        return {
            SentenceForm.NON_CUSTODIAL: "非监禁刑",
            SentenceForm.PROBATION: "缓刑",
            SentenceForm.CUSTODY: "实刑",
            SentenceForm.LIFE: "无期徒刑",
            SentenceForm.DEATH: "死刑",
        }[self]


# Statutory bounds of a single crime's term (Criminal Law arts. 38, 42, 45); combined
# sentences (数罪并罚, art. 69) may exceed them, up to the combined caps.
TERM_BOUNDS_MONTHS = {
    SentenceKind.FIXED_TERM: (6, 180),
    SentenceKind.DETENTION: (1, 6),
    SentenceKind.SURVEILLANCE: (3, 24),
}
COMBINED_CAP_MONTHS = {
    SentenceKind.FIXED_TERM: 300,
    SentenceKind.DETENTION: 12,
    SentenceKind.SURVEILLANCE: 36,
}
PROBATION_MAX_MONTHS = 36
"""缓刑 suspends 拘役 or 有期徒刑 of at most three years, no longer (刑法第72条)."""
CAIL_LIFE = -1
CAIL_DEATH = -2


class Sentence(BaseModel):
    """One defendant's imposed (or recommended) sentence.

    ``months`` is the term of 有期徒刑, 拘役 or 管制 and is ``None`` for every other kind;
    ``probation_months`` is the 缓刑 probation period, only for 有期徒刑 ≤ 3 years or 拘役.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SentenceKind
    months: int | None = Field(default=None, ge=1, le=COMBINED_CAP_MONTHS[SentenceKind.FIXED_TERM])
    probation_months: int | None = Field(default=None, ge=1, le=60)
    fine_yuan: int | None = Field(default=None, ge=0)
    confiscation: bool = False
    """没收财产 (part or all of the defendant's property)."""
    political_rights_months: int | None = Field(default=None, ge=0)
    """剥夺政治权利 for a term; ``political_rights_for_life`` for 终身."""
    political_rights_for_life: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Sentence:
        if self.kind.has_term:
            if self.months is None:
                raise ValueError(f"a {self.kind.value} sentence needs months")
            cap = COMBINED_CAP_MONTHS[self.kind]
            if self.months > cap:
                raise ValueError(f"{self.kind.value} cannot exceed {cap} months")
        elif self.months is not None:
            raise ValueError(f"a {self.kind.value} sentence has no months")
        if self.probation_months is not None:
            if self.kind not in (SentenceKind.FIXED_TERM, SentenceKind.DETENTION):
                raise ValueError("only 有期徒刑 or 拘役 can be suspended (缓刑)")
            if self.kind is SentenceKind.FIXED_TERM and (self.months or 0) > PROBATION_MAX_MONTHS:
                raise ValueError("缓刑 applies only to 有期徒刑 of at most 3 years")
        return self

    @property
    def form(self) -> SentenceForm:
        if self.kind in (SentenceKind.DEATH, SentenceKind.DEATH_SUSPENDED):
            return SentenceForm.DEATH
        if self.kind is SentenceKind.LIFE:
            return SentenceForm.LIFE
        if self.probation_months is not None:
            return SentenceForm.PROBATION
        if self.kind in (SentenceKind.FIXED_TERM, SentenceKind.DETENTION):
            return SentenceForm.CUSTODY
        return SentenceForm.NON_CUSTODIAL

    @property
    def term_months(self) -> int:
        """The CAIL2018 term label: months of 有期徒刑/拘役/管制, 0 without a term, −1 life, −2 death."""
        if self.kind in (SentenceKind.DEATH, SentenceKind.DEATH_SUSPENDED):
            return CAIL_DEATH
        if self.kind is SentenceKind.LIFE:
            return CAIL_LIFE
        return self.months or 0

    @property
    def severity(self) -> tuple[int, int]:
        """Orders sentences from lightest to heaviest (kind first, then term)."""
        return (_SEVERITY.index(self.kind), self.months or 0)

    def to_text(self, *, arabic: bool = False) -> str:
        """The sentence as a judgment writes it after 判处 (see :func:`format_sentence`)."""
        return format_sentence(self, arabic=arabic)


# --------------------------------------------------------------------------- durations


_DURATION = re.compile(
    rf"(?:(?P<years>{NUMBER_PATTERN})年(?:零)?)?(?:(?P<months>{NUMBER_PATTERN})个?月)?"
)


@lru_cache(maxsize=4096)
def parse_duration_months(text: str) -> int:
    """``一年六个月`` → 18, ``十个月`` → 10, ``二十年`` → 240, ``1年6个月`` → 18 (cached: terms repeat)."""
    m = _DURATION.fullmatch(text.strip())
    if not m or not (m.group("years") or m.group("months")):
        raise ValueError(f"not a duration: {text!r}")
    years = parse_int(m.group("years")) if m.group("years") else 0
    months = parse_int(m.group("months")) if m.group("months") else 0
    return years * 12 + months


def format_duration(months: int, *, arabic: bool = False) -> str:
    """18 → ``一年六个月``; the inverse of :func:`parse_duration_months`."""
    if months <= 0:
        raise ValueError("a duration is at least one month")
    years, rest = divmod(months, 12)
    num = str if arabic else format_chinese_integer
    out = f"{num(years)}年" if years else ""
    if rest:
        out += f"{num(rest)}个月"
    return out


def format_amount(yuan: int, *, arabic: bool = False) -> str:
    return f"人民币{yuan}元" if arabic else f"人民币{format_chinese_integer(yuan)}元"


# --------------------------------------------------------------------------- parsing

_DUR = rf"{NUMBER_PATTERN}年(?:零)?(?:{NUMBER_PATTERN}个?月)?|{NUMBER_PATTERN}个?月"
_AMOUNT = rf"(?:人民币)?\s*{NUMBER_PATTERN}\s*元"
_RE_DEATH_SUSPENDED = re.compile(r"死刑[，,]?\s*缓期[二两2]年执行")
_RE_DEATH = re.compile(r"死刑")
_RE_LIFE = re.compile(r"无期徒刑")
_RE_TERM = re.compile(rf"(?P<kind>有期徒刑|拘役|管制)\s*(?P<dur>{_DUR})")
_RE_PROBATION = re.compile(rf"缓刑\s*(?P<dur>{_DUR})")
_RE_FINE = re.compile(rf"罚金\s*(?P<amount>{_AMOUNT})")
_RE_FINE_BARE = re.compile(r"罚金")
_RE_EXEMPT = re.compile(r"免[予于除]刑事处罚")
_RE_CONFISCATION = re.compile(r"没收(?:个人)?(?:全部|部分)?(?:个人)?财产")
_RE_RIGHTS_LIFE = re.compile(r"剥夺政治权利终身")
_RE_RIGHTS = re.compile(rf"剥夺政治权利\s*(?P<dur>{_DUR})")
_TERM_KIND = {"有期徒刑": SentenceKind.FIXED_TERM, "拘役": SentenceKind.DETENTION, "管制": SentenceKind.SURVEILLANCE}
_RE_NOTE = re.compile(r"[（(][^（）()]*[)）]")


class SentenceParseError(ValueError):
    """The text names no principal penalty this module recognises."""


@lru_cache(maxsize=4096)
def parse_sentence(text: str) -> Sentence:
    """Read one sentence clause (``有期徒刑一年六个月，缓刑二年，并处罚金人民币五千元``).

    The text is what follows 判处 or 决定执行 for one defendant; bracketed notes such as
    ``（刑期从判决执行之日起计算…）`` may remain and are ignored. Judgments word their sentences
    alike, so clauses repeat across a corpus: results are cached (a ``Sentence`` is immutable), an
    error is raised again each time.
    """
    clause = _RE_NOTE.sub("", text) if "(" in text or "（" in text else text
    # Each pattern below starts with a fixed word: a substring test skips the search when it is absent.
    fine: int | None = None
    if "罚金" in clause and (m := _RE_FINE.search(clause)):
        fine = round(parse_amount_yuan(m.group("amount")))
    confiscation = "没收" in clause and bool(_RE_CONFISCATION.search(clause))
    rights_life = False
    rights_months = None
    clause_wo_rights = clause
    if "剥夺政治权利" in clause:
        rights_life = bool(_RE_RIGHTS_LIFE.search(clause))
        rights_months = parse_duration_months(m.group("dur")) if (m := _RE_RIGHTS.search(clause)) else None
        clause_wo_rights = _RE_RIGHTS.sub("", _RE_RIGHTS_LIFE.sub("", clause))
    extras = dict(
        fine_yuan=fine,
        confiscation=confiscation,
        political_rights_months=rights_months,
        political_rights_for_life=rights_life,
    )
    if _RE_DEATH_SUSPENDED.search(clause_wo_rights):
        return Sentence(kind=SentenceKind.DEATH_SUSPENDED, **extras)
    if _RE_LIFE.search(clause_wo_rights):
        return Sentence(kind=SentenceKind.LIFE, **extras)
    if _RE_DEATH.search(clause_wo_rights):
        return Sentence(kind=SentenceKind.DEATH, **extras)
    if m := _RE_TERM.search(clause_wo_rights):
        kind = _TERM_KIND[m.group("kind")]
        months = parse_duration_months(m.group("dur"))
        probation = None
        if p := _RE_PROBATION.search(clause_wo_rights, m.end()):
            probation = parse_duration_months(p.group("dur"))
        return Sentence(kind=kind, months=months, probation_months=probation, **extras)
    if _RE_EXEMPT.search(clause):
        return Sentence(kind=SentenceKind.EXEMPT, **extras)
    if _RE_FINE_BARE.search(clause):
        return Sentence(kind=SentenceKind.FINE_ONLY, **extras)
    raise SentenceParseError(f"no principal penalty in {text[:60]!r}")


def format_sentence(sentence: Sentence, *, arabic: bool = False) -> str:
    """Write a sentence as a judgment does after 判处; :func:`parse_sentence` reads it back exactly."""
    parts: list[str] = []
    kind = sentence.kind
    if kind is SentenceKind.EXEMPT:
        parts.append("免予刑事处罚")
    elif kind is SentenceKind.FINE_ONLY:
        parts.append("罚金" + (format_amount(sentence.fine_yuan, arabic=arabic) if sentence.fine_yuan else ""))
    elif kind.has_term:
        assert sentence.months is not None
        parts.append(kind.label + format_duration(sentence.months, arabic=arabic))
        if sentence.probation_months:
            parts.append("缓刑" + format_duration(sentence.probation_months, arabic=arabic))
    else:
        parts.append(kind.label)
    if sentence.political_rights_for_life:
        parts.append("剥夺政治权利终身")
    elif sentence.political_rights_months:
        parts.append("剥夺政治权利" + format_duration(sentence.political_rights_months, arabic=arabic))
    if kind is not SentenceKind.FINE_ONLY and sentence.fine_yuan is not None:
        parts.append("并处罚金" + format_amount(sentence.fine_yuan, arabic=arabic))
    if sentence.confiscation:
        parts.append("并处没收个人全部财产")
    return "，".join(parts)


def sentence_from_term_months(term_months: int) -> Sentence:
    """A CAIL/LawBench term label (months, −1 life, −2 death) as a sentence.

    Terms of six months or less are read as 拘役 below six months and 有期徒刑 from six; the
    label does not say which, nor whether it was suspended, so the form is unknown there.
    """
    if term_months == CAIL_DEATH:
        return Sentence(kind=SentenceKind.DEATH)
    if term_months == CAIL_LIFE:
        return Sentence(kind=SentenceKind.LIFE)
    if term_months <= 0:
        return Sentence(kind=SentenceKind.EXEMPT)
    if term_months < 6:
        return Sentence(kind=SentenceKind.DETENTION, months=term_months)
    return Sentence(kind=SentenceKind.FIXED_TERM, months=min(term_months, 300))
