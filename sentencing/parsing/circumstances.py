"""Sentencing circumstances (量刑情节) and roles (主犯/从犯) read from facts and reasoning.

Each cue is attributed to the defendants the sentence is about (:mod:`sentencing.parsing.mentions`)
and dropped when negated (``不构成自首``, ``不属于累犯``, ``无前科``) or when it only reports a
defence argument the court rejected (``辩护人提出被告人系从犯的意见，本院不予采纳``). The court's
reasoning has the last word: a circumstance it negates is dropped even if the facts assert it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple, TypeVar

from sentencing.case import AggravationCode, CircumstanceCode, Evidence, Role
from sentencing.parsing.mentions import Attributor, in_quotes, with_first_char_filter

C = CircumstanceCode
A = AggravationCode
T = TypeVar("T")

# Each cue as alternatives that all begin with a literal character (a lookbehind goes after its
# word: ``立功(?<!重大立功)``): their union then lets the regex engine skip from one possible first
# character to the next instead of trying the pattern at every position (3-4x faster over a
# judgment than the same union behind a lookahead).
_CUES: tuple[tuple[CircumstanceCode, tuple[str, ...]], ...] = (
    (C.SURRENDER, (
        "自首", "自动[^。；，]{0,12}投案", "主动[^。；，]{0,12}投案", "自行[^。；，]{0,12}投案", "投案自首",
    )),
    (C.CONFESSION, ("坦白", "如实供述", "如实交代", "如实供认")),
    (C.PLEA_AGREEMENT, ("认罪认罚", "签署[了]?认罪认罚具结书", "签字具结", "具结书")),
    (C.COURT_PLEA, (
        *(f"{when}[^。；，]{{0,6}}认罪(?!认罚)"
          for when in ("当庭", "庭上", "庭审中", "庭审时", "庭审过程中", "开庭审理中")),
        "当庭[^。；，]{0,4}如实供述", "自愿认罪(?!认罚)",
    )),
    (C.MAJOR_MERITORIOUS, ("重大立功",)),
    (C.MERITORIOUS, ("立功(?<!重大立功)",)),
    (C.RECIDIVIST, ("累犯",)),
    (C.PRIOR_RECORD, (
        "前科(?!(?:情况)?(?:核实|查询|证明|材料|说明))",
        "曾因[^。；]{0,30}?罪[^。；]{0,40}?(?:判处|刑满释放)",
        "刑满释放",
    )),
    (C.RESTITUTION, (
        "退赃", "退赔", "退缴", "退出(?:了)?(?:全部|部分)?(?:违法所得|赃款|非法所得)",
        "退还(?:了)?(?:全部|部分)?(?:赃款|赃物)", "赃款[^。；，]{0,6}已退",
    )),
    (C.COMPENSATION, ("赔偿", "赔付")),
    (C.FORGIVENESS, ("谅解",)),
    (C.RECONCILIATION, ("刑事和解", "达成(?:了)?和解", "和解协议")),
    (C.ATTEMPT, ("未遂(?<!自杀未遂)(?<!轻生未遂)", "未得逞")),  # a victim's 自杀未遂 is no attempted crime
    (C.DISCONTINUATION, ("犯罪中止", "中止犯", "系中止", "属中止")),
    (C.PREPARATION, ("犯罪预备", "预备犯", "系预备")),
    (C.JUVENILE, ("未成年", "未满十八周岁", "不满十八周岁", "已满十[四六]周岁不满十八周岁")),
    (C.ELDERLY, ("已满七十五周岁", "年满七十五周岁", "超过七十五周岁", "已满75周岁", "年满75周岁")),
    (C.VULNERABLE_VICTIM, (
        "幼女",
        *(f"{who}[^。；，的]{{0,6}}(?:系|为|是|均系|均为)(?:未成年人|老年人|残疾人|孕妇|儿童|未满十[四八]周岁)"
          for who in ("被害人", "对象")),
    )),
    (C.DISABILITY, ("又聋又哑", "聋哑人", "系盲人")),
    (C.DISASTER_TIME, ("疫情(?:防控)?期间", "自然灾害期间", "抗疫期间")),
)
_ROLE_CUES: tuple[tuple[Role, tuple[str, ...]], ...] = (
    (Role.COERCED, ("胁从犯", "被胁迫参加")),
    (Role.ACCESSORY, ("从犯(?<!胁从犯)", "起次要作用", "起辅助作用", "次要作用", "辅助作用")),
    (Role.INSTIGATOR, ("教唆犯",)),
    (Role.PRINCIPAL, ("主犯", "起主要作用", "起决定作用", "起组织、指挥作用")),
)
# Negation just before the cue (same clause) or just after it.
_NEG_BEFORE = with_first_char_filter(
    r"(?:不构成|不属于|不能认定(?:为)?|不予认定(?:为)?|不应认定(?:为)?|不认定(?:为)?|不宜认定(?:为)?|不具有|不具备|不存在|没有|无|未|未能|拒不|不符合|"
    r"不系|不是|并非|否认|不能|不予|不成立|不够|尚未|均未|亦未|也未|并未|且无|既无|不再|不必区分主|不区分主|不分主|无需区分主)"
    r"[^，,。；;]{0,6}$"
    # what was not obtained, named at more length (``没有取得被害人家属的谅解``)
    r"|(?:没有|未|未能|并未|尚未)(?:取得|获得|得到)[^，,。；;]{0,10}$"
)
# Negative words that do not negate what follows (``对量刑建议没有异议且签字具结``).
_NOT_NEGATION = with_first_char_filter(r"(?:没有|无|未提出|未有|不持)异议|无意见|无误")
_NEG_AFTER = re.compile(r"[^，,。；;]{0,6}(?:不成立|不能成立|不予认定|不予采纳|不予支持|不能认定|的条件|不符)")
# A defence argument is a claim, not a finding: it counts only if the court then accepts it.
_DEFENCE = with_first_char_filter(
    r"辩护意见|辩护人(?:提出|认为|称|辩称|的)|辩称|辩解|上诉理由|上诉称|上诉提出|被告人(?:(?!证据)[^，,。；;]){0,8}提出"
    r"|辩护人[^，,。；;]{0,8}(?:提出|所提|认为|称)"
)
_ITEM = re.compile(r"\s*(?:[一二三四五六七八九十]{1,3}、|\d{1,2}[、.．]|[（(][一二三四五六七八九十\d]{1,3}[）)])")
_VERDICT = with_first_char_filter(
    r"(?P<reject>不予采纳|不予支持|不能成立|不予认可|不予采信|不成立|与(?:查明的)?事实不符|理由不足|不予认定)"
    r"|(?P<accept>予以采纳|予以支持|本院采纳|酌予采纳|酌情采纳|应予采纳|予以采信|本院予以|理由成立|意见成立)"
)
# Orders and generic law text that mention a cue without asserting it of the defendant.
_NOT_ASSERTED_BEFORE = with_first_char_filter(r"(?:责令|应当|应|依法|判令|附带民事|要求|请求|诉请)[^，,。；;]{0,8}$")


class Finding(NamedTuple):
    """A cue found in a text, attributed to some defendants, possibly negated."""

    code: CircumstanceCode | None
    role: Role | None
    names: tuple[str, ...]
    negated: bool
    evidence: Span
    pregnant: bool = False
    """A pregnancy of the defendant (sentencing.parsing.pregnancy), neither a circumstance nor a role."""
    aggravation: AggravationCode | None = None
    """A fact that selects a heavier tier (入户抢劫, 轮奸…), neither a circumstance nor a role."""
    tier: str | None = None
    """A statutory tier the text says the conduct reaches, in the words tier labels use (``数额巨大``,
    ``情节严重``); the sentence is the evidence."""
    tier_at: int = -1
    """Where those words start in the text (the evidence's sentence may hold them more than once)."""


class Span(NamedTuple):
    """Where a cue was read (the fields of :class:`Evidence`); made into Evidence only when kept."""

    source: str
    start: int
    end: int
    text: str

    def evidence(self) -> Evidence:
        return Evidence.of(self.source, self.start, self.end, self.text)


def span_evidence(text: str, source: str, start: int, end: int) -> Span:
    """The span ``text[start:end]`` without its surrounding blanks."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(source, start, end, text[start:end])


def _negated(text: str, start: int, end: int, sent_start: int, sent_end: int) -> bool:
    before = text[max(sent_start, start - 14):start]
    if "异议" in before or "无意见" in before or "无误" in before:  # what every _NOT_NEGATION match holds
        before = _NOT_NEGATION.sub("，", before)
    if _NEG_BEFORE.search(before):
        return True
    if _NEG_AFTER.match(text, end, min(sent_end, end + 14)):
        return True
    period = text.rfind("。", 0, start) + 1
    claimed = _DEFENCE.search(text, min(period, sent_start), start)
    if not claimed and _ITEM.match(text, period):
        # An item of a numbered list (``上诉及辩护意见为：一、…。二、…应认定为犯罪未遂。``): the lead-in
        # before the colon that opens the list says whose words these are.
        lo = max(0, period - 1500)
        colon = max(text.rfind("：", lo, period), text.rfind(":", lo, period))
        if colon >= 0 and _ITEM.match(text, colon + 1):
            claimed = _DEFENCE.search(text, max(0, colon - 30), colon + 1)
    if claimed:
        verdict = _VERDICT.search(text, end, min(len(text), end + 400))
        return verdict is None or verdict.group("reject") is not None
    return False


def _union(cues: tuple[tuple[T, tuple[str, ...]], ...], prefix: str) -> tuple[re.Pattern[str], dict[str, T]]:
    """All cues in one pass, in order: each alternative ends in an empty named group that says which
    cue matched (``match.lastgroup``).

    Alternatives are grouped by their first character, in order within a group: only one group can
    match at a position, so the engine tries its few alternatives rather than skipping past all the
    others one by one; the first alternative that matches is the same.
    """
    by_first: dict[str, list[str]] = {}
    meaning: dict[str, T] = {}
    for k, (value, patterns) in enumerate(cues):
        for j, pattern in enumerate(patterns):
            if not pattern or pattern[0] in "\\.^$*+?{}[]()|" or pattern[1:2] in ("*", "+", "?", "{"):
                raise ValueError(f"cue {pattern!r} must begin with a literal character, unquantified")
            by_first.setdefault(pattern[0], []).append(f"{pattern[1:]}(?P<{prefix}{k}_{j}>)")
            meaning[f"{prefix}{k}_{j}"] = value
    return re.compile("|".join(f"{first}(?:{'|'.join(rest)})" for first, rest in by_first.items())), meaning


# Facts the articles name as selecting a heavier tier, in the words courts use for them.
_AGGRAVATION_CUES: tuple[tuple[AggravationCode, tuple[str, ...]], ...] = (
    (A.HOME_INVASION, ("入户抢劫",)),
    (A.PUBLIC_TRANSPORT, ("在公共交通工具上(?:实施)?抢劫", "公共交通工具上抢劫")),
    (A.FINANCIAL_INSTITUTION, ("抢劫银行", "抢劫(?:其他)?金融机构")),
    (A.ARMED_WITH_GUN, ("持枪抢劫",)),
    (A.IMPERSONATING_POLICE, ("冒充军警人员抢劫", "冒充(?:军人|警察|军警|民警)[^，,。；;]{0,12}抢劫")),
    (A.GANG_RAPE, ("轮奸", "轮流(?:强行)?与[^，,。；;]{1,8}发生性关系", "强行轮流与")),
    (A.PUBLIC_RAPE, ("当众强奸", "在公共场所当众")),
    (A.ARMED_AFFRAY, ("持械[^，,。；;]{0,8}斗殴",)),
    # not ``离开现场``: a driver who reported the accident and went to surrender did not flee
    (A.HIT_AND_RUN, ("肇事后逃逸", "驾车逃逸", "弃车逃逸", "驾驶[^，,。；;]{0,24}逃逸", "后逃逸", "逃离(?:事故)?现场",
                     "驶离(?:事故)?现场")),
)
_ALL_CUES, _CUE_OF = _union(_CUES, "c")
_ALL_AGGRAVATIONS, _AGGRAVATION_OF = _union(_AGGRAVATION_CUES, "a")
_STATUTE_AFTER = re.compile(r"[^。；;]{0,24}?的，(?:处|依照|以)")
_MAY_AGGRAVATE = ("抢劫", "轮", "强奸", "斗殴", "逃", "驶离")
"""A word every aggravation cue holds: most texts hold none, and substring tests rule them out fast."""
_ALL_ROLES, _ROLE_OF = _union(_ROLE_CUES, "r")
# A tier said of the conduct (``骗取他人财物，数额巨大，其行为已构成诈骗罪``), not the law's words for it
# (``数额巨大的，处三年以上``, ``数额巨大是指``, ``数额巨大标准为六万元``), nor a question (``是否属于情节严重``),
# nor an approach to it (``接近数额巨大``), nor a charge the court corrects (``指控数额巨大有误``), nor a
# definition of the crime (:data:`_DEFINITION`).
_TIER_STATEMENT = re.compile(r"(?:数额|数量)(?:特别巨大|巨大|较大)|情节(?:特别严重|严重|特别恶劣|恶劣|较轻)")
# (besides the law's words as the aggravation cues' _STATUTE_AFTER reads them)
_NOT_A_STATEMENT_AFTER = re.compile(
    r"[^。；;]{0,24}?的，应当|的?(?:标准|起点|是指|为[0-9一二三四五六七八九十])"
    r"|[^，,。；;]{0,4}(?:有误|错误|不当|不妥|不准确)")
_NOT_A_STATEMENT_BEFORE = re.compile(r"(?:是否|接近|低于|不足|达不到|规定|解释|标准)[^，,。；;]{0,8}$")
# A sentence that defines the crime (``职务侵占罪在客观方面必须表现为…侵占本单位财物，数额较大的行为``)
# or quotes a standard (``盗窃公私财物价值一千元至三千元以上的，应当认定为数额较大``).
_DEFINITION = re.compile(r"客观方面|构成要件|必须表现为|是指|以上的，|的，应当认定为|的，属于")
_VICTIM_WORDS = re.compile(r"被害|对象|侵害|幼女|儿童")


def find_circumstances(text: str, source: str, attributor: Attributor) -> Iterator[Finding]:
    """Every circumstance and role cue in ``text`` with the defendants it is about."""
    spans: dict[int, Span] = {}  # the evidence of each sentence, made once however many cues it holds
    for m in _ALL_CUES.finditer(text):
        yield _finding(text, source, attributor, m, _CUE_OF[m.lastgroup], None, spans)  # type: ignore[index]
    for m in _ALL_ROLES.finditer(text) if _may_name_a_role(text) else ():
        yield _finding(text, source, attributor, m, None, _ROLE_OF[m.lastgroup], spans)  # type: ignore[index]
    for m in _ALL_AGGRAVATIONS.finditer(text) if any(w in text for w in _MAY_AGGRAVATE) else ():
        if _STATUTE_AFTER.match(text, m.end()) or in_quotes(text, m.start()):
            continue  # the article's words, quoted or cited (``交通运输肇事后逃逸…的，处三年以上``), assert nothing
        found = _finding(text, source, attributor, m, None, None, spans)
        yield found._replace(aggravation=_AGGRAVATION_OF[m.lastgroup])  # type: ignore[index]
    for m in _TIER_STATEMENT.finditer(text) if "数" in text or "情节" in text else ():
        if (_STATUTE_AFTER.match(text, m.end()) or _NOT_A_STATEMENT_AFTER.match(text, m.end())
                or in_quotes(text, m.start())
                or _NOT_A_STATEMENT_BEFORE.search(text, max(0, m.start() - 12), m.start())
                or _DEFINITION.search(text, attributor.sentence_at(m.start())[0], m.start())):
            continue
        yield _finding(text, source, attributor, m, None, None, spans)._replace(tier=m.group(), tier_at=m.start())


def _may_name_a_role(text: str) -> bool:
    """Whether ``text`` holds a word that every role cue holds: most texts name no role, and these
    substring tests rule them out several times faster than the scan for the cues."""
    return "从犯" in text or "主犯" in text or "教唆犯" in text or "作用" in text or "胁迫" in text


def _finding(
    text: str,
    source: str,
    attributor: Attributor,
    m: re.Match[str],
    code: CircumstanceCode | None,
    role: Role | None,
    spans: dict[int, Span],
) -> Finding:
    start, end = m.span()
    sent_start, sent_end = attributor.sentence_at(start)
    negated = _negated(text, start, end, sent_start, sent_end)
    if code is C.RESTITUTION or code is C.COMPENSATION:
        if _NOT_ASSERTED_BEFORE.search(text, max(sent_start, start - 12), start):
            negated = True
    elif code is C.JUVENILE and _VICTIM_WORDS.search(text, sent_start, end):
        negated = True
    evidence = spans.get(sent_start)
    if evidence is None:
        evidence = spans[sent_start] = span_evidence(text, source, sent_start, sent_end)
    return Finding(code, role, attributor.who(start), negated, evidence)
