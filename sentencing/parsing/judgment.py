"""The judgment section (判决如下) → each defendant's sentence, per crime and as executed.

``被告人魏某犯开设赌场罪，判处有期徒刑十个月，并处罚金人民币二万元，犯非法持有枪支罪，判处有期徒刑一年，
数罪并罚，决定执行有期徒刑一年六个月，并处罚金人民币二万元。`` gives two crime sentences and the
imposed one (决定执行). A prior sentence merged in (``与前罪未执行的有期徒刑六个月…合并``) is not a
crime of this case and is skipped. On appeal, items that quash (撤销) or uphold (维持) a first-instance
judgment are skipped; the new sentence follows in a later item. The clause itself is read by
:func:`sentencing.sentence.parse_sentence`, the one home of sentence text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sentencing.case import Evidence
from sentencing.sentence import Sentence, SentenceParseError, parse_sentence

# Who: 被告人 / 上诉人 / 原审被告人 followed by a name (names are short and end at 犯 or punctuation).
_PERSON = re.compile(
    r"(?:原审上诉人|原审被告人|上诉人|被告人|被告单位|罪犯)\s*[：:]?\s*(?:自报)?"
    r"(?P<name>[^\s，,。；;：:、（()）犯]{1,20}?)(?=犯|，|,|、)"
)
_CRIME = re.compile(r"犯(?P<charge>[^，,。；;：:\s]{1,40}?)罪(?=[，,；;。\s]|判处|免|单处|并处)")
_EXECUTE = re.compile(r"决定执行|合并执行|并罚执行")
# A sentence of another judgment merged in (``，与前罪未执行的有期徒刑六个月…合并``).
_PRIOR = re.compile(r"[，,；;]\s*(?:与|连同|和(?:前|原))")
_SKIP_ITEM = re.compile(r"^\s*(?:[一二三四五六七八九十]+、)?\s*(?:撤销|维持|驳回|准许|核准)")
_ITEM_NUMBER = re.compile(r"[一二三四五六七八九十][一二三四五六七八九十]{0,2}、")  # a class first: the scan skips ahead
_CLAUSE_STOP = re.compile(r"[。；;]")
_NOTE = re.compile(r"[（(][^（）()]*[)）]")


@dataclass
class CrimeSentence:
    charge: str
    sentence: Sentence
    start: int
    end: int


@dataclass
class DefendantOutcome:
    """What the judgment section says about one defendant."""

    name: str
    crimes: list[CrimeSentence] = field(default_factory=list)
    sentence: Sentence | None = None
    start: int = 0
    end: int = 0
    problems: list[str] = field(default_factory=list)

    def evidence(self, text: str) -> Evidence:
        return Evidence.of("judgment", self.start, self.end, text[self.start:self.end])


def _mask_notes(text: str) -> str:
    """Bracketed notes (``（刑期从判决执行之日起计算…）``) blanked out, keeping every offset."""
    if "（" not in text and "(" not in text:
        return text
    prev = None
    while prev != text:
        prev = text
        text = _NOTE.sub(lambda m: " " * len(m.group(0)), text)
    return text


def _items(text: str) -> list[tuple[int, int]]:
    """Numbered items (一、二、…) of the section, or the whole section as one item."""
    starts = {0}
    for m in _ITEM_NUMBER.finditer(text):
        k = m.start()
        while k > 0 and text[k - 1].isspace():
            k -= 1
        if k == 0 or text[k - 1] in "。；;" or k < m.start():
            starts.add(m.start())
    starts = sorted(starts)
    bounds = [*starts[1:], len(text)]
    return [(s, e) for s, e in zip(starts, bounds, strict=True) if text[s:e].strip()]


def _parse_clause(text: str) -> Sentence:
    clause = text.strip(" ，,；;。")
    return parse_sentence(clause)


def parse_judgment_section(text: str) -> list[DefendantOutcome]:
    """Each defendant's outcome, in order of first mention; a later item overrides an earlier one."""
    masked = _mask_notes(text)
    outcomes: dict[str, DefendantOutcome] = {}
    for item_start, item_end in _items(masked):
        if _SKIP_ITEM.match(masked, item_start):
            continue
        people = [m for m in _PERSON.finditer(masked, item_start, item_end) if _CRIME.match(masked, m.end())]
        for k, person in enumerate(people):
            unit_end = people[k + 1].start() if k + 1 < len(people) else item_end
            outcome = _parse_unit(masked, person.group("name"), person.start(), unit_end)
            if outcome.sentence is None and not outcome.crimes:
                previous = outcomes.get(outcome.name)
                if previous is not None:
                    previous.problems.extend(outcome.problems)
                    continue
            outcomes[outcome.name] = outcome
    return list(outcomes.values())


def _parse_unit(text: str, name: str, start: int, end: int) -> DefendantOutcome:
    outcome = DefendantOutcome(name=name, start=start, end=end)
    execute = _EXECUTE.search(text, start, end)
    crimes_end = execute.start() if execute else end
    if prior := _PRIOR.search(text, start, crimes_end):
        crimes_end = prior.start()
    crime_matches = list(_CRIME.finditer(text, start, crimes_end))
    for k, crime in enumerate(crime_matches):
        clause_end = crime_matches[k + 1].start() if k + 1 < len(crime_matches) else crimes_end
        clause = text[crime.end():clause_end]
        try:
            sentence = _parse_clause(clause)
        except (SentenceParseError, ValueError) as exc:
            outcome.problems.append(f"{name}: crime {crime.group('charge')}: {exc}")
            continue
        charge = crime.group("charge").strip()
        outcome.crimes.append(CrimeSentence(charge, sentence, crime.start(), clause_end))
    if execute:
        stop = _CLAUSE_STOP.search(text, execute.end(), end)
        clause_end = stop.start() if stop else end
        try:
            outcome.sentence = _parse_clause(text[execute.end():clause_end])
        except (SentenceParseError, ValueError) as exc:
            outcome.problems.append(f"{name}: 决定执行: {exc}")
    elif len(outcome.crimes) == 1:
        outcome.sentence = outcome.crimes[0].sentence
    elif len(outcome.crimes) > 1:
        outcome.problems.append(f"{name}: {len(outcome.crimes)} crimes but no 决定执行 line")
    if outcome.crimes or outcome.sentence:
        last = max([c.end for c in outcome.crimes] + ([clause_end] if execute else []))
        outcome.end = min(end, last)
    return outcome
