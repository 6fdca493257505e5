"""Splitting a criminal judgment (刑事判决书) into its parts.

A first-instance judgment reads: [case title] court, document type, case number (案号), the
parties (公诉机关, 被告人…, 辩护人…), the procedure (…检察院以…号起诉书指控…现已审理终结), the facts
(公诉机关指控…/经审理查明…), the reasoning (本院认为…依照…之规定), the judgment (判决如下：…), the
appeal notice and signatures, sometimes the cited articles. Every part is kept as a span of the
original text so that values read from it can point back to it (provenance).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from sentencing.numerals import parse_int


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int

    def of(self, text: str) -> str:
        return text[self.start:self.end]

    @property
    def empty(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True, slots=True)
class JudgmentParts:
    """The parts of one judgment text, as spans of it (empty spans where a part is missing)."""

    text: str
    header: Span
    """From the start to the end of the party list: title, court, case number, parties."""
    procedure: Span
    facts: Span
    reasoning: Span
    judgment: Span
    tail: Span
    """Appeal notice, signatures, date and appended articles."""

    def part(self, name: str) -> str:
        span: Span = getattr(self, name)
        return span.of(self.text)


_PROCEDURE_CUES = ("起诉书", "提起公诉", "指控", "一案", "本院受理", "审理了本案", "审理终结", "提出抗诉", "不服")
_FACT_START_CUES = ("公诉机关指控", "检察院指控", "经审理查明", "原审法院认定", "原判认定", "原判决认定")
_JUDGMENT_MARKERS = ("判决如下", "判处如下")
_JUDGMENT_END_MARKERS = (
    "如不服本判决", "如不服本院判决", "本判决为终审判决", "本判决为终审", "审判长", "代理审判员", "审判员",
    "人民陪审员", "附：相关法律", "附相关法律", "附：本案", "附法律条文", "附：法律条文", "附录",
)
_REASONING_MARKER = "本院认为"
# One pass over the text for the first of several words: the position is that of the first
# ``text.find`` of each, found by one alternation of literals (which the regex engine scans fast).
_JUDGMENT_END = re.compile("|".join(map(re.escape, _JUDGMENT_END_MARKERS)))
_PROCEDURE_CUE = re.compile("|".join(map(re.escape, _PROCEDURE_CUES)))
_FACT_START_CUE = re.compile("|".join(map(re.escape, _FACT_START_CUES)))
_DONE = re.compile(r"现已审理终结[。.]?|已审理终结[。.]?")


def _sentence_start(text: str, pos: int, floor: int = 0) -> int:
    return max(floor, text.rfind("。", floor, pos) + 1, text.rfind("\n", floor, pos) + 1)


def split_judgment(text: str) -> JudgmentParts:
    """Find the parts of a judgment; missing parts come back as empty spans, never as an error."""
    n = len(text)
    # The judgment part: the last 判决如下 (an appeal may quote the first-instance one earlier).
    j_start = -1
    for marker in _JUDGMENT_MARKERS:
        j_start = max(j_start, text.rfind(marker))
    if j_start >= 0:
        body = j_start + 4
        while body < n and text[body] in "：: \u3000":
            body += 1
        j_end = m.start() if (m := _JUDGMENT_END.search(text, body)) else n
        judgment = Span(body, j_end)
        tail = Span(j_end, n)
        before = j_start
    else:
        judgment = Span(n, n)
        tail = Span(n, n)
        before = n
    # The reasoning: the first 本院认为 opening a sentence (a later one may answer a defence).
    r_start = _reasoning_start(text, before)
    if r_start < 0:
        r_start = text.rfind(_REASONING_MARKER, 0, before)
    if r_start >= 0:
        reasoning = Span(r_start, _sentence_start(text, before, r_start) if j_start >= 0 else before)
        if reasoning.empty:
            reasoning = Span(r_start, before)
        facts_end = r_start
    else:
        reasoning = Span(before, before)
        facts_end = _sentence_start(text, before) if j_start >= 0 else before
    # The procedure: the first sentence naming the indictment, up to 现已审理终结.
    proc_pos = m.start() if (m := _PROCEDURE_CUE.search(text, 0, facts_end)) else -1
    if proc_pos >= 0:
        proc_start = _sentence_start(text, proc_pos)
        done = _DONE.search(text, proc_start, facts_end)
        if done:
            proc_end = done.end()
        else:
            cue = _FACT_START_CUE.search(text, proc_pos, facts_end)
            proc_end = cue.start() if cue else _sentence_end(text, proc_pos, facts_end)
        header = Span(0, proc_start)
        procedure = Span(proc_start, proc_end)
        facts = Span(proc_end, max(proc_end, facts_end))
    else:
        header = Span(0, 0)
        procedure = Span(0, 0)
        facts = Span(0, facts_end)
    return JudgmentParts(text, header, procedure, facts, reasoning, judgment, tail)


def _reasoning_start(text: str, before: int) -> int:
    """The first 本院认为 in ``text[:before]`` that opens a sentence (at the start, or after a blank, 。 or ：)."""
    pos = text.find(_REASONING_MARKER, 0, before)
    while pos >= 0:
        if pos == 0 or text[pos - 1] in "。：:" or text[pos - 1].isspace():
            return pos
        pos = text.find(_REASONING_MARKER, pos + 1, before)
    return -1


def _sentence_end(text: str, pos: int, limit: int) -> int:
    end = text.find("。", pos, limit)
    return limit if end < 0 else end + 1


# --------------------------------------------------------------------------- dates

_CN = "〇○零一二三四五六七八九十"
_DATE = re.compile(
    rf"(?P<y>[0-9]{{4}}|[{_CN}]{{4}})年(?P<m>[0-9]{{1,2}}|[{_CN}]{{1,3}})月"
    rf"(?P<d>[0-9]{{1,2}}|[{_CN}]{{1,3}})日"
)


def find_dates(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, tuple[int, int, int]]]:
    """Full dates (``2017年4月28日``, ``二〇一七年六月二十八日``) as ``(start, end, (y, m, d))``, lazily.

    A date has its 年 four characters in, so only the places four before a 年 are tried: the same
    matches as scanning every position with the pattern, several times faster on long texts.
    """
    end = len(text) if end is None else end
    last = start
    year = text.find("年", start + 4, end)
    while year >= 0:
        at = year - 4
        if at >= last and (m := _DATE.match(text, at, end)):
            last = m.end()
            if (found := _date_numbers(m.groups())) is not None:
                y, mo, d = found
                if 1900 <= y <= 2100 and 1 <= mo <= 12 and 1 <= d <= 31:
                    yield m.start(), m.end(), found
        year = text.find("年", year + 1, end)


@lru_cache(maxsize=4096)
def _date_numbers(groups: tuple[str, ...]) -> tuple[int, int, int] | None:
    try:
        y, mo, d = (int(g) if g.isascii() else parse_int(g) for g in groups)
    except ValueError:
        return None
    return y, mo, d


# Dates of year, month or day precision in Arabic digits (``2022年3月``, ``2020年5月3日``, ``2019年``),
# as facts give the time of an act: each read as the earliest and the latest day it may mean.
_PARTIAL_DATE = re.compile(r"(?P<y>(?:19|20)\d{2})年(?:(?P<m>1[0-2]|0?[1-9])月(?:(?P<d>3[01]|[12]\d|0?[1-9])日)?)?")


@dataclass(frozen=True, slots=True)
class DateSpan:
    start: int
    end: int
    text: str
    earliest: dt.date
    latest: dt.date


def find_date_spans(text: str, start: int = 0, end: int | None = None) -> Iterator[DateSpan]:
    """Dates of any precision in ``text[start:end]``, in order, each with the days it may mean."""
    for m in _PARTIAL_DATE.finditer(text, start, len(text) if end is None else end):
        y = int(m.group("y"))
        if m.group("m") is None:
            early, late = dt.date(y, 1, 1), dt.date(y, 12, 31)
        else:
            mo = int(m.group("m"))
            last = (dt.date(y + (mo == 12), mo % 12 + 1, 1) - dt.timedelta(days=1))
            if m.group("d") is not None:
                early = late = dt.date(y, mo, min(int(m.group("d")), last.day))
            else:
                early, late = dt.date(y, mo, 1), last
        yield DateSpan(m.start(), m.end(), m.group(0), early, late)
