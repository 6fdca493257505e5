"""Defendants as the header lists them, and the charges the prosecutor brought (指控…犯…罪).

``被告人张3，女，1975年4月16日出生…。曾因犯盗窃罪于2016年10月17日被…判处有期徒刑七个月`` gives the
name, the birth date (for 未成年/75+ at the time of the offence) and a prior record (前科). The
indictment (``指控被告人彭明、秦云犯介绍卖淫罪``) gives each defendant's charges as indicted: what is
known before judgment. Charge names are kept as written, without the trailing 罪.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sentencing.case import Charge, Evidence, trusted
from sentencing.parsing.document import find_dates
from sentencing.parsing.mentions import with_first_char_filter

_LABEL = (
    r"(?:原审上诉人\s*（原审被告人）|上诉人\s*（原审被告人）|原审上诉人|原审被告人|被告单位|被告人|上诉人)"
)
# An entry opens the text or follows a blank, a full stop or a colon (``(?<![^…])``: no other
# character before it), a form that lets the scan skip to the labels' first characters.
_ENTRY = with_first_char_filter(
    rf"(?<![^\s。；;：:）)])(?P<label>{_LABEL})\s*[：:]?\s*(?:自报)?(?P<name>[^，,。；;（(：:\s、]{{1,40}})"
)
_NOT_A_NAME = re.compile(r"^(?:因|均|系|的|在|及|对|等|到|与|等人|人|于(?=[0-9０-９同本次当该]))")
# Where a person's name runs into the next words without punctuation (``徐文涛曾因盗窃…``).
_NAME_END = re.compile(r"(?<=..)(?:曾因|曾|因|系|又|于|犯|自报|现|住|无|男|女)")
_ENTRY_END = with_first_char_filter(
    r"(?<![^\s。；;])(?:辩护人|诉讼代表人|委托代理人|法定代理人|指定辩护人|公诉机关|原公诉机关|抗诉机关)"
)
_SEX = re.compile(r"[，,]\s*(?P<sex>男|女)\s*[，,。；;]")
_BIRTH = re.compile(r"(?:出生|生于|出生于|生)")
_PRIOR = with_first_char_filter(
    r"(?:曾|又|先后|多次)?(?:因|犯)[^。；;]{0,40}?罪[^。；;]{0,80}?(?:被[^。；;]{0,30}?判处|判处|刑满释放|服刑)"
    r"|刑满释放"
)
_NOT_PRIOR = re.compile(r"因本案|因涉嫌|涉嫌")
_INDICTMENT = re.compile(r"指控")
_ACCUSED = re.compile(
    r"(?:被告单位|被告人|原审被告人)(?P<names>[^犯。；;，,]{1,80}?)犯(?:有)?(?P<charges>[^，,。；;：:]+?罪(?:[、和及][^，,。；;：:]+?罪)*)(?=[，,。；;：:\s]|一案|于|向|的|$)"
)
_CHARGE_SPLIT = re.compile(r"罪[、和及]")


@dataclass
class HeaderDefendant:
    name: str
    start: int
    end: int
    is_unit: bool = False
    sex: str | None = None
    birth_date: dt.date | None = None
    prior_record: Evidence | None = None
    charges: list[Charge] = field(default_factory=list)


def parse_header_defendants(text: str, start: int, end: int) -> list[HeaderDefendant]:
    """Defendants listed in ``text[start:end]`` (the header), in order, without repeats."""
    entries = [m for m in _ENTRY.finditer(text, start, end) if not _NOT_A_NAME.match(m.group("name"))]
    out: dict[str, HeaderDefendant] = {}
    for k, m in enumerate(entries):
        entry_end = entries[k + 1].start() if k + 1 < len(entries) else end
        if stop := _ENTRY_END.search(text, m.end(), entry_end):
            entry_end = stop.start()
        name = m.group("name")
        if m.group("label") != "被告单位":
            if cut := _NAME_END.search(name):
                name = name[: cut.start()]
            if len(name) > 12:
                continue
        if name in out:
            continue
        person = HeaderDefendant(name=name, start=m.start(), end=entry_end, is_unit=m.group("label") == "被告单位")
        body = text[m.end():entry_end]
        if s := _SEX.search(body[:40]):
            person.sex = s.group("sex")
        for d_start, d_end, (y, mo, d) in find_dates(text, m.end(), entry_end):
            if _BIRTH.match(text, d_end) or text[max(m.end(), d_start - 2):d_start] == "生于":
                try:
                    person.birth_date = dt.date(y, mo, d)
                except ValueError:
                    pass
                break
        # Every prior-record match holds one of these words: without them the (slow) scan finds nothing.
        if "判处" in body or "刑满释放" in body or "服刑" in body:
            for p in _PRIOR.finditer(text, m.end(), entry_end):
                if not _NOT_PRIOR.search(p.group(0)):
                    # The whole statement, through the term and the release (刑满释放) that follow the
                    # match: what a reader, and the 累犯 check (parsing.recidivism), need of it.
                    stop = text.find("。", p.end(), entry_end)
                    end = stop if stop >= 0 else entry_end
                    person.prior_record = Evidence.of("document", p.start(), end, text[p.start():end])
                    break
        out[name] = person
    return list(out.values())


def split_charges(text: str) -> list[str]:
    """``盗窃罪、贩卖毒品罪`` → [``盗窃``, ``贩卖毒品``]; ``掩饰、隐瞒犯罪所得罪`` stays one charge."""
    parts = _CHARGE_SPLIT.split(text.strip())
    names = [p.removesuffix("罪").strip() for p in parts]
    return [n for n in names if n and len(n) <= 60]


def split_names(text: str) -> list[str]:
    names = re.split(r"[、，,和及与]|被告人|被告单位", text)
    return [n.strip() for n in names if n.strip()]


def parse_indictment(text: str, start: int, end: int) -> dict[str, list[Charge]]:
    """Charges per defendant name from the indictment sentence(s) in ``text[start:end]``."""
    charges: dict[str, list[Charge]] = {}
    for ind in _INDICTMENT.finditer(text, start, end):
        stop = text.find("。", ind.end(), end)
        stop = end if stop < 0 else stop
        for m in _ACCUSED.finditer(text, ind.end(), stop):
            names = split_names(m.group("names"))
            if not names or any(len(n) > 20 for n in names):
                continue
            ev = Evidence.of("document", m.start("charges"), m.end("charges"), m.group("charges"))
            accused_of = split_charges(m.group("charges"))
            for name in names:
                have = charges.setdefault(name, [])
                for charge in accused_of:
                    if all(c.name != charge for c in have):  # split_charges keeps names of 1 to 60 characters
                        have.append(trusted(Charge, {"name": charge, "evidence": ev}))
        if charges:
            break
    return charges
