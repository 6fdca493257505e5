"""Whether a prior record (前科) the texts state may make the defendant a recidivist (累犯), or a
drug reoffender (毒品再犯).

累犯 is the court's finding (刑法第65条): a person sentenced to 有期徒刑 or more who, within five
years after serving it (刑满释放), commits another intentional crime that deserves 有期徒刑 or
more; neither crime negligent (过失犯罪), and eighteen or older at both. It must be punished more
heavily and excludes probation (第74条), so a recommendation that counts it as a mere 前科 is
wrong in kind, not degree. Extraction does not decide it (the age at the earlier crime and the
deserved term are rarely in the text); when the dates a prior record states put the new crime
within five years of the release, the prosecutor is told to check, with the dates read.

毒品再犯 (第356条) needs no dates: anyone once sentenced for 走私、贩卖、运输、制造 or 非法持有毒品
who commits a crime of the drug section (第347–357条) again is punished more heavily. The
guideline does not price it (no circumstance code), so a prior drug sentence the text states is
pointed out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sentencing.case import Case, Circumstance, CircumstanceCode, Defendant
from sentencing.charges import ChargeCatalogue, default_catalogue
from sentencing.parsing.document import find_date_spans

_RELEASED = re.compile(r"刑满释放|刑满出狱|执行完毕|减刑释放")
_STATEMENT_BREAK = re.compile(r"[；;。]")
_PRIOR_CRIME = re.compile(r"(?:因犯?|犯)(?P<crime>[^，,。；;、]{1,30}?)罪")
_NOT_SERVED = re.compile(r"缓刑|免予刑事处罚|单处罚金|拘役|管制|假释")
_SERVED_TERM = re.compile(r"有期徒刑|无期徒刑|死刑")
_WINDOW_YEARS = 5
_PRIOR_DRUG_CRIMES = ("走私、贩卖、运输、制造毒品", "非法持有毒品")
_DRUG_SECTION = range(347, 358)


@dataclass(frozen=True)
class RecidivismHint:
    """The dates that put a new crime within five years of a prior release, and what to check."""

    released: str
    offence: str
    message: str


def _stated_prior_record(defendant: Defendant) -> Circumstance | None:
    """The defendant's prior record (前科), unless a unit (no person's record) or none is stated."""
    if defendant.is_unit:
        return None
    return next((c for c in defendant.circumstances if c.code is CircumstanceCode.PRIOR_RECORD), None)


def _record_text(case: Case, prior: Circumstance) -> tuple[str, tuple[int, int]]:
    """The whole statement of a prior record, and where it lies in the facts ((0, 0) elsewhere).

    Extraction cuts its evidence at a 分号, and a record of several sentences runs on past one
    (``曾因犯盗窃罪被判处有期徒刑一年；2015年因犯贩卖毒品罪被判处有期徒刑三年``): the rest of the
    sentence is read too.
    """
    assert prior.evidence is not None
    if prior.evidence.source != "facts":
        return prior.evidence.text, (0, 0)
    start = prior.evidence.start
    stop = case.facts.find("。", start)
    text = case.facts[start:stop if stop >= 0 else len(case.facts)]
    return text, (start, start + len(text))


def _five_years_after(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + _WINDOW_YEARS)
    except ValueError:  # 29 February
        return day.replace(year=day.year + _WINDOW_YEARS, day=28)


def recidivism_hint(case: Case, defendant: Defendant,
                    catalogue: ChargeCatalogue | None = None) -> RecidivismHint | None:
    """A hint when ``defendant``'s stated prior record may be 累犯, else None.

    Reads the prior record's evidence (the sentence that states it) for its last release, the
    statement of that sentence (``…；因犯盗窃罪，于2011年被判处有期徒刑六年，2016年12月7日刑满释放``,
    not an earlier one), and the facts for the first date after that release: the new crime. Says nothing
    when the defendant is already a recidivist, is a unit, has no dated release, the prior sentence
    was not one that counts (缓刑, 拘役, 管制…), either crime is negligent, or the dates are more
    than five years apart, whichever way their precision (year, month, day) is read.
    """
    if defendant.has(CircumstanceCode.RECIDIVIST):
        return None
    prior = _stated_prior_record(defendant)
    if prior is None or prior.evidence is None:
        return None
    text, skip = _record_text(case, prior)
    releases = list(_RELEASED.finditer(text))
    if not releases:
        return None
    released = releases[-1]
    begin = max((m.end() for m in _STATEMENT_BREAK.finditer(text, 0, released.start())), default=0)
    if _NOT_SERVED.search(text, begin, released.start()):
        return None
    term_stated = _SERVED_TERM.search(text, begin, released.start()) is not None
    dates = [d for d in find_date_spans(text, begin, released.end()) if released.start() - d.end <= 3]
    if not dates:
        return None
    release_early, release_late = dates[-1].earliest, dates[-1].latest
    catalogue = catalogue or default_catalogue()
    crimes = [m.group("crime") for m in _PRIOR_CRIME.finditer(text, begin, released.start())]
    for name in [*crimes, *defendant.charge_names]:
        spec = catalogue.resolve(name)
        if "过失" in name or (spec is not None and not spec.intentional):
            return None
    facts = case.facts
    offence = next((d for d in find_date_spans(facts)
                    if not skip[0] <= d.start < skip[1] and d.earliest > release_late), None)
    if offence is None or offence.latest >= _five_years_after(release_early):
        return None
    release_text, offence_text = dates[-1].text, offence.text
    return RecidivismHint(
        released=release_text, offence=offence_text,
        message=(f"前科刑满释放于{release_text}，本案犯罪时间{offence_text}在其后五年以内：若"
                 + ("" if term_stated else "前罪被判处有期徒刑以上刑罚、")
                 + "前后罪均为故意犯罪、犯前罪时已满十八周岁且本罪应判处有期徒刑以上刑罚，构成累犯（刑法第65条），"
                 "应当从重处罚，不适用缓刑（第74条）；请核实后录入“累犯”"),
    )


def drug_reoffence_hint(case: Case, defendant: Defendant, catalogue: ChargeCatalogue | None = None) -> str | None:
    """A hint when a stated prior record is a sentence for 走私、贩卖、运输、制造 or 非法持有毒品 and a
    present charge is of the drug section: 毒品再犯 (刑法第356条), to be punished more heavily."""
    prior = _stated_prior_record(defendant)
    if prior is None or prior.evidence is None:
        return None
    catalogue = catalogue or default_catalogue()
    articles = [spec.article.split("-")[0] for name in defendant.charge_names
                if (spec := catalogue.resolve(name)) is not None]
    if not any(a.isdigit() and int(a) in _DRUG_SECTION for a in articles):
        return None
    for m in _PRIOR_CRIME.finditer(_record_text(case, prior)[0]):
        spec = catalogue.resolve(m.group("crime"))
        if spec is not None and spec.name in _PRIOR_DRUG_CRIMES:
            return (f"前科为{spec.name}罪，又犯毒品犯罪：构成毒品再犯（刑法第356条），应当从重处罚；"
                    "量刑指导意见测算未计入，请核实")
    return None
