"""审判的时候怀孕的妇女 (刑法第49条、第72条): a defendant the texts say is or was pregnant in the case.

The law's words are 审判的时候; the SPC reads them to take in a pregnancy during custody before
trial, however it ended (法释〔1998〕18号), so a pregnancy the texts tell of the defendant counts.
Judgments mention pregnancy far more often of a victim (``致被害人怀孕``) or in the quoted statute
(``怀孕的妇女和已满七十五周岁的人``) than of the defendant: a cue counts only in a clause whose subject
is the defendant (被告人/上诉人 or a defendant's name, with no other woman named after it), and not
when denied (``未怀孕``).
"""

from __future__ import annotations

import re

from sentencing.parsing.circumstances import Finding, span_evidence
from sentencing.parsing.mentions import Attributor

_CUE = re.compile(r"怀孕|孕妇|怀有身孕|有孕在身|妊娠期")
_SUBJECT = re.compile(r"被告人|上诉人|罪犯")
# Another woman the clause may be about, or the statute's general words.
_SOMEONE_ELSE = re.compile(
    r"被害人|受害人|被害妇女|幼女|其妻|妻子|老婆|女友|女朋友|儿媳|女儿|母亲|致使|致其|使其|导致|造成|强奸|奸淫|"
    r"怀孕的妇女|不满十八周岁|已满七十五周岁"
)
_DENIED = re.compile(r"(?:未|没有|并未|并非|不是|否认)[^，,。；;]{0,3}$")
_CLAUSE_END = "。；;"


def find_pregnancies(text: str, source: str, attributor: Attributor) -> list[Finding]:
    """Findings (``pregnant`` set) of a defendant's pregnancy, attributed as other cues are."""
    if "孕" not in text and "妊娠" not in text:
        return []
    names = attributor.finder.names
    out: list[Finding] = []
    for m in _CUE.finditer(text):
        start = max(text.rfind(ch, 0, m.start()) for ch in _CLAUSE_END) + 1
        before = text[start:m.start()]
        subject = max((before.rfind(w) for w in (*names, "被告人", "上诉人", "罪犯")), default=-1)
        if subject < 0 or not (_SUBJECT.search(before) or any(n in before for n in names)):
            continue
        if _SOMEONE_ELSE.search(before, subject) or _SOMEONE_ELSE.match(text, m.start()) \
                or _DENIED.search(before):
            continue
        who = attributor.who(m.start())
        if who:
            out.append(Finding(None, None, who, False, span_evidence(text, source, start + subject, m.end()),
                               pregnant=True))
    return out


def pregnant_for(name: str, findings: list[Finding]) -> bool:
    return any(f.pregnant and name in f.names for f in findings)
