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
from sentencing.charges import default_catalogue
from sentencing.parsing.document import find_dates
from sentencing.parsing.mentions import with_first_char_filter

_LABEL = (
    r"(?:原审上诉人\s*（原审被告人）|上诉人\s*（原审被告人）|原审上诉人|原审被告人|被告单位"
    r"|被告人暨附带民事(?:公益)?诉讼被告人?|被告人|上诉人)"
)
# An entry opens the text or follows a blank, a full stop or a colon (``(?<![^…])``: no other
# character before it), a form that lets the scan skip to the labels' first characters.
_ENTRY = with_first_char_filter(
    rf"(?<![^\s。；;：:）)])(?P<label>{_LABEL})\s*[：:]?\s*(?:自报)?(?P<name>[^，,。；;（(：:\s、]{{1,40}})"
)
_NOT_A_NAME = re.compile(r"^(?:因|均|系|的|在|及|对|等|到|与|等人|人|于(?=[0-9０-９同本次当该]))")
# Where a person's name runs into the next words without punctuation (``徐文涛曾因盗窃…``), also in the
# short procedural headers of many judgments, appeals above all, that name a party only in passing
# (``原审被告人韩飞飞不服，提出上诉``, ``被告人叶某某到庭参加了诉讼``, ``被告人彭勇及其辩护人李欢``).
_NAME_END = re.compile(
    r"(?<=..)(?:曾因|曾|因|系|又|于|犯|自报|现|住|无|男|女|不服|未提起|对(?:刑事|原|一审|判决)|到庭|及其|及辩护人"
    r"|的?诉讼代表人)"
)
# A unit's name may hold any of those words; only its representative ends it (``被告单位明珠化工公司诉讼代表人赵某``).
_UNIT_NAME_END = re.compile(r"(?<=..)(?:的?诉讼代表人|及其|到庭)")
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
# The prosecutor's charge (指控), or a private prosecutor's (自诉人张某以被告人张三犯…罪…提起控诉).
_INDICTMENT = re.compile(r"指控|自诉人[^。；;，,]{0,30}?以(?=被告)")
# After the charges: the end of the clause, or a civil claim joined to the case (``犯故意伤害罪、原审附带
# 民事诉讼原告人…提起附带民事诉讼一案``).
_ACCUSED = re.compile(
    r"(?:被告单位|被告人|原审被告人)(?P<names>[^犯。；;，,]{1,80}?)(?:(?:涉嫌)?犯(?:有)?|涉嫌)"
    r"(?P<charges>(?!罪)(?:(?!被告)[^，,。；;：:])+?罪(?:[、和及](?:(?!被告)[^，,。；;：:])+?罪)*)"
    r"(?=[，,。；;：:\s（(]|一案|于|向|的|并|[、及暨和]?(?:指控|(?:原审)?(?:附带|被告))|$)"
)
_CHARGE_SET = frozenset({"name", "evidence"})
"""The fields an indicted charge records as given (``model_dump(exclude_unset=True)``)."""
_SOME_OF_THEM = re.compile(r"^(?P<names>[^犯罪]{1,60})犯(?P<charge>.+)$")
# ``临沂明珠化工有限公司（以下简称明珠化工公司）``: the header and the facts may use either name.
_ALIAS = re.compile(r"^(?P<name>.+?)[（(]以下简称[“\"]?(?P<alias>[^”\"）)]+)[”\"]?[）)]$")
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
        elif cut := _UNIT_NAME_END.search(name):
            name = name[: cut.start()]
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
    """``盗窃罪、贩卖毒品罪`` → [``盗窃``, ``贩卖毒品``]; ``掩饰、隐瞒犯罪所得罪`` stays one charge.

    Charges listed under one 罪 (``寻衅滋事、故意伤害、开设赌场罪``) are split when the whole is no
    charge the catalogue knows and every part is one.
    """
    catalogue = default_catalogue()
    names: list[str] = []
    for part in _CHARGE_SPLIT.split(text.strip()):
        name = part.removesuffix("罪").strip().removeprefix("犯")  # 犯敲诈勒索罪、犯寻衅滋事罪
        if "、" in name and catalogue.resolve(name) is None:
            resolved = catalogue.resolve_all(name.split("、"))
            if all(spec is not None for _, spec in resolved):
                names += [n for n, _ in resolved]
                continue
        names.append(name)
    return [n for n in names if n and len(n) <= 60]


def split_names(text: str) -> list[tuple[str, str | None]]:
    """``被告单位甲有限公司（以下简称甲公司）、被告人张三`` → [(``甲有限公司``, ``甲公司``), (``张三``, None)]."""
    out: list[tuple[str, str | None]] = []
    for n in re.split(r"[、，,和及与]|被告人|被告单位", text):
        n = n.strip()
        if alias := _ALIAS.match(n):
            out.append((alias.group("name").strip(), alias.group("alias").strip()))
        elif n:
            out.append((n, None))
    return out


@dataclass
class Indictment:
    """The charges as indicted, by defendant name as the indictment first writes it."""

    charges: dict[str, list[Charge]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """``以下简称`` names → the full name: the header and the facts may use either."""

    @property
    def names(self) -> list[str]:
        return list(self.charges)

    def of(self, name: str) -> list[Charge]:
        return self.charges.get(self.aliases.get(name, name), [])


def parse_indictment(text: str, start: int, end: int) -> Indictment:
    """Charges per defendant name from the indictment sentence(s) in ``text[start:end]``."""
    found = Indictment()
    for ind in _INDICTMENT.finditer(text, start, end):
        stop = text.find("。", ind.end(), end)
        stop = end if stop < 0 else stop
        for m in _ACCUSED.finditer(text, ind.end(), stop):
            names = split_names(m.group("names"))
            if not names or any(len(n) > 20 for n, _ in names):
                continue
            ev = Evidence.of("document", m.start("charges"), m.end("charges"), m.group("charges"))
            for name, alias in names:
                if alias:
                    found.aliases[alias] = name
                found.charges.setdefault(name, [])
            accused = [name for name, _ in names]
            for charge in split_charges(m.group("charges")):
                # ``…犯诈骗罪、王力犯行贿罪、妨害作证罪``: from there on, the charges are that one's alone;
                # ``…犯组织卖淫罪、孟凯、朱某犯协助组织卖淫罪``: those others', named without their label.
                if (some := _SOME_OF_THEM.match(charge)) and default_catalogue().resolve(charge) is None:
                    who = re.split(r"[、，,]", some.group("names"))
                    if all(2 <= len(n) <= 12 for n in who):
                        accused, charge = who, some.group("charge")
                for name in accused:
                    have = found.charges.setdefault(name, [])
                    if all(c.name != charge for c in have):  # split_charges keeps names of 1 to 60 characters
                        have.append(trusted(Charge, {"name": charge, "evidence": ev, "tier": None,
                                                     "tier_evidence": None, "quantities": None}, _CHARGE_SET))
        if found.charges:
            break
    return found
