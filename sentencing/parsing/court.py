"""The deciding court and the case number (案号): province, city and level.

New case numbers carry the province abbreviation (``（2018）苏0482刑初260号``); old ones do not
(``（2013）睢刑初字第183号``), so the court's name decides, then the procuratorate named in the
header, then the appeal court named in the appeal notice (``向浙江省温州市中级人民法院提出上诉``);
a city name (``南阳市卧龙区人民法院``) names its province through :mod:`sentencing.parsing.cities`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sentencing.case import Court, CourtLevel, Evidence, trusted
from sentencing.parsing.cities import CITY_PROVINCE
from sentencing.regions import BY_ABBREVIATION, PROVINCES

_COURT_WORD = "人民法院"
# The Chinese characters just before a position (at most 40): the court name before 人民法院.
# It always matches, if only the empty run at the position.
_HAN_RUN_TO_END = re.compile(r"[\u4e00-\u9fff]*+\Z")
_TITLE_END = re.compile(r".*(?:判决书|裁定书|决定书|一审|二审|再审|审判监督|刑事)")
_PROVINCE_NAMES = sorted(
    {p.full_name: p.code for p in PROVINCES} | {p.name: p.code for p in PROVINCES if p.code != "XJB"}
    | {"新疆生产建设兵团": "XJB", "兵团": "XJB"},
    key=len,
    reverse=True,
)
_PROVINCE_CODE = {p.full_name: p.code for p in PROVINCES} | {p.name: p.code for p in PROVINCES} | {
    "新疆生产建设兵团": "XJB", "兵团": "XJB"}
_RE_PROVINCE = re.compile("|".join(re.escape(n) for n in _PROVINCE_NAMES))
_RE_CITY = re.compile(
    "(?P<city>"
    + "|".join(sorted(CITY_PROVINCE, key=len, reverse=True))
    + ")(?=市|盟|地区|[^，。\\s]{0,10}自治州|州|中级)"
)
_MUNICIPALITIES = {"BJ": "北京市", "TJ": "天津市", "SH": "上海市", "CQ": "重庆市"}
# Case numbers: ``（2018）苏0482刑初260号``; Inner Mongolia's courts write 内 rather than 蒙.
_ABBREVIATIONS = {abbr: p.code for abbr, p in BY_ABBREVIATION.items()} | {"内": "NM"}
_RE_CASE_NUMBER = re.compile(
    r"[（(〔\[]\s*(?P<year>(?:19|20)\d{2})\s*[）)〕\]]\s*(?P<body>[^\s，。；号（()）]{1,30}?)第?\s*(?P<serial>\d+)\s*号"
)
_RE_CASE_NUMBER_BARE = re.compile(
    r"(?<![\u4e00-\u9fff])(?P<body>[\u4e00-\u9fff]{1,8}刑[\u4e00-\u9fff]{0,4})第?(?P<serial>\d+)号"
)
_RE_CITY_IN_NAME = re.compile(r"(?:省|自治区)?(?P<city>[\u4e00-\u9fff]{2,12}?(?:自治州|市|盟|地区))")
_RE_APPEAL_COURT = re.compile(r"向(?P<court>[\u4e00-\u9fff]{2,30}?(?:中级|高级)人民法院)")
_RE_PROCURATORATE = re.compile(r"(?P<name>[\u4e00-\u9fff]{2,30}?人民检察院)")


@dataclass(frozen=True, slots=True)
class CaseNumber:
    text: str
    start: int
    end: int
    year: int | None
    province: str | None
    """Province code from the abbreviation of a new-style number; None for old-style numbers."""


def find_court_name(text: str, limit: int = 400) -> tuple[str, int, int] | None:
    """The first court name in the text (``湖北省武汉市东西湖区人民法院``) with its span.

    A case title may precede it, with or without a space (``…一审刑事判决书南京市鼓楼区人民法院``).
    """
    pos = text.find(_COURT_WORD, 0, limit + len(_COURT_WORD))
    if pos < 0:
        return None
    end = pos + len(_COURT_WORD)
    start = _HAN_RUN_TO_END.search(text, max(0, pos - 40), pos).start()  # type: ignore[union-attr]
    name = text[start:end]
    if m := _TITLE_END.match(name[:-len(_COURT_WORD)]):
        start += m.end()
        name = text[start:end]
    if m := _RE_PROVINCE.search(name):
        start += m.start()
        name = text[start:end]
    if len(name) <= len(_COURT_WORD):
        return None
    return name, start, end


def find_case_number(text: str, limit: int = 600) -> CaseNumber | None:
    """The case number (案号) near the top of the document."""
    m = _RE_CASE_NUMBER.search(text, 0, limit)
    if m and "刑" not in m.group("body"):
        m = _RE_CASE_NUMBER.search(text, m.end(), limit) or m
    if m:
        body = m.group("body")
        province = _ABBREVIATIONS.get(body[0]) if len(body) > 1 and body[1].isdigit() else None
        return CaseNumber(m.group(0), m.start(), m.end(), int(m.group("year")), province)
    if m := _RE_CASE_NUMBER_BARE.search(text, 0, limit):
        return CaseNumber(m.group(0), m.start(), m.end(), None, None)
    return None


@lru_cache(maxsize=4096)  # a corpus names a few thousand courts, each many times
def province_in(name: str) -> str | None:
    """The province a place or institution name states or implies (``南阳市卧龙区`` → ``HA``)."""
    if m := _RE_PROVINCE.search(name):
        return _PROVINCE_CODE[m.group(0)]
    if m := _RE_CITY.search(name):
        return CITY_PROVINCE[m.group("city")]
    return None


@lru_cache(maxsize=4096)
def court_level(name: str) -> CourtLevel:
    if "最高人民法院" in name:
        return CourtLevel.SUPREME
    if "高级人民法院" in name:
        return CourtLevel.HIGH
    if "中级人民法院" in name:
        return CourtLevel.INTERMEDIATE
    if any(w in name for w in ("军事法院", "海事法院", "铁路运输", "知识产权法院", "金融法院", "互联网法院")):
        return CourtLevel.SPECIAL
    return CourtLevel.BASIC


@lru_cache(maxsize=4096)
def city_of(name: str, province: str | None) -> str | None:
    """The city a court sits in: a municipality, or the first 市/州/盟/地区 in its name."""
    if province in _MUNICIPALITIES:
        return _MUNICIPALITIES[province]
    stripped = _RE_PROVINCE.sub("", name, count=1) if _RE_PROVINCE.match(name) else name
    if m := _RE_CITY.search(stripped):
        rest = stripped[m.end():]
        suffix = re.match(r"市|盟|地区|[^，。\s]{0,10}?自治州|州", rest)
        return m.group("city") + (suffix.group(0) if suffix else "")
    if m := _RE_CITY_IN_NAME.match(stripped):
        return m.group("city")
    return None


def parse_court(text: str, *, header_end: int | None = None) -> tuple[Court | None, CaseNumber | None]:
    """The court (with province, city, level and its provenance) and the case number of a judgment."""
    found = find_court_name(text)
    number = find_case_number(text)
    if found is None:
        return None, number
    name, start, end = found
    province = province_in(name)
    if province is None and number is not None:
        province = number.province
    if province is None:
        head = text[: header_end or 800]
        for m in _RE_PROCURATORATE.finditer(head):
            if province := province_in(m.group("name")):
                break
    if province is None:
        for m in _RE_APPEAL_COURT.finditer(text):
            if province := province_in(m.group("court")):
                break
    level = court_level(name)
    city = city_of(name, province)
    if level is CourtLevel.BASIC and province not in _MUNICIPALITIES:
        # A basic court's appeals go to the intermediate court of its prefecture-level city.
        for m in _RE_APPEAL_COURT.finditer(text):
            if "中级" in m.group("court") and (upper := city_of(m.group("court"), province)):
                city = upper
                break
    court = trusted(Court, {
        "name": name,
        "province": province,
        "city": city,
        "level": level,
        "evidence": Evidence.of("document", start, end, name),
    })
    return court, number
