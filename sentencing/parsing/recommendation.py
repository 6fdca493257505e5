"""Removing the prosecutor's sentencing recommendation (量刑建议) from model inputs.

The recommendation (``建议判处有期徒刑六个月至一年``) is what the service is meant to produce, and
it is close to the court's sentence: left in the facts it would leak the label. Procedural
recommendations (``建议适用简易程序``) and plain mentions (``对量刑建议没有异议``) carry no sentence
and stay, because they say something true about the defendant (认罪认罚, 签字具结).
"""

from __future__ import annotations

import re

from sentencing.numerals import NUMBER_PATTERN

_SENTENCE_END = "。！？!?\n"
_CLAUSE_BREAK = "，,；;：:" + _SENTENCE_END

_TRIGGER = re.compile(r"建议")
_PENALTY_WORDS = re.compile(
    r"判处|判刑|有期徒刑|徒刑|拘役|管制|缓刑|罚金|刑期|处刑|量刑幅度|免予刑事处罚|免于刑事处罚|无期|死刑"
)
# A stated amount of punishment: a term or a money figure (``六个月``, ``一年``, ``二万元``).
_STATED_PENALTY = re.compile(
    rf"(?:有期徒刑|拘役|管制|缓刑|罚金)\s*(?:人民币)?{NUMBER_PATTERN}|{NUMBER_PATTERN}\s*(?:年|个月|月)(?!\d)"
    rf"|无期徒刑|死刑|免予刑事处罚|免于刑事处罚"
)

_SPEAKER = re.compile(r"\s*(?:公诉机关|检察机关|公诉人|[^，。]{0,30}检察院)?\s*(?:并|同时|还|亦)?\s*")


def _sentence_bounds(text: str, pos: int) -> tuple[int, int]:
    start = pos
    while start > 0 and text[start - 1] not in _SENTENCE_END:
        start -= 1
    end = pos
    while end < len(text) and text[end] not in _SENTENCE_END:
        end += 1
    return start, end


def _clause_start(text: str, pos: int, floor: int) -> int:
    while pos > floor and text[pos - 1] not in _CLAUSE_BREAK:
        pos -= 1
    return pos


def recommendation_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of ``text`` that state a recommended sentence."""
    spans: list[tuple[int, int]] = []
    for m in _TRIGGER.finditer(text):
        if spans and m.start() < spans[-1][1]:
            continue
        sent_start, sent_end = _sentence_bounds(text, m.start())
        clause_start = _clause_start(text, m.start(), sent_start)
        rest = text[m.end():sent_end]
        is_quantum = text[max(0, m.start() - 2):m.start()] == "量刑"
        if is_quantum:
            # ``提出有期徒刑一年至二年的量刑建议``: the amount may precede the words.
            if not (_STATED_PENALTY.search(text, clause_start, sent_end)):
                continue
            start = clause_start
        else:
            if not _PENALTY_WORDS.search(rest):
                continue
            start = m.start()
            # ``公诉机关建议…``: drop the speaker too when it is the whole clause head.
            if _SPEAKER.fullmatch(text, clause_start, m.start()) or _STATED_PENALTY.search(
                text, clause_start, m.start()
            ):
                start = clause_start
        if start > sent_start and text[start - 1] in "，,；;":
            start -= 1
        end = sent_end
        if start == sent_start and end < len(text):
            end += 1  # the whole sentence goes, its full stop with it
        spans.append((start, end))
    return spans


def strip_recommendation(text: str) -> str:
    """The text without the prosecutor's recommended sentence (``建议判处…`` to the end of that sentence).

    Keeps the sentence's full stop so that the remaining text still reads as sentences; a clause
    left dangling (``公诉机关认为被告人具有坦白情节，``) is kept as written.
    """
    spans = recommendation_spans(text)
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        last = end
    out.append(text[last:])
    return "".join(out)
