"""Fictitious people of the demo corpus: pseudonymised names (张某甲), births, dates in judgment style.

Real judgments published on 中国裁判文书网 pseudonymise parties as 张某, 张某某 or 张某甲; the
demo corpus does the same for everyone, so no generated document names a real person.
"""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate

from sentencing.numerals import format_chinese_integer

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
ORDINALS = "甲乙丙丁戊"

ETHNICITIES = (("汉族", 92.0), ("回族", 1.5), ("壮族", 1.5), ("满族", 1.0), ("苗族", 1.0), ("土家族", 1.0),
               ("彝族", 0.8), ("蒙古族", 0.6), ("藏族", 0.3), ("维吾尔族", 0.3))
EDUCATIONS = (("小学文化", 20.0), ("初中文化", 45.0), ("高中文化", 14.0), ("中专文化", 6.0), ("大专文化", 7.0),
              ("大学文化", 5.0), ("文盲", 3.0))
OCCUPATIONS = (("无业", 40.0), ("农民", 25.0), ("务工", 15.0), ("个体经营者", 8.0), ("司机", 5.0),
               ("公司职员", 7.0))


class Weighted:
    """A fixed weighted choice; one ``random()`` per draw (fast, and stable across Python versions)."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, pairs: Sequence[tuple[object, float]]) -> None:
        if not pairs:
            raise ValueError("a weighted choice needs at least one item")
        self._items = [item for item, _ in pairs]
        self._cum = list(accumulate(float(w) for _, w in pairs))
        self._total = self._cum[-1]

    def __call__(self, rng: random.Random):
        return self._items[min(bisect(self._cum, rng.random() * self._total), len(self._items) - 1)]


def pick(rng: random.Random, items: Sequence):
    """A uniform choice with one ``random()`` (``random.choice`` uses a version-dependent method)."""
    return items[int(rng.random() * len(items))]


def between(rng: random.Random, low: int, high: int) -> int:
    """A uniform integer in ``[low, high]``."""
    return low + int(rng.random() * (high - low + 1))


ethnicity = Weighted(ETHNICITIES)
education = Weighted(EDUCATIONS)
occupation = Weighted(OCCUPATIONS)


class NameBook:
    """Names of one case: distinct surnames for defendants, so no name is a prefix of another."""

    __slots__ = ("_rng", "_style", "_used")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()
        r = rng.random()
        self._style = "某某" if r < 0.45 else ("某" if r < 0.8 else "ordinal")

    def _surname(self) -> str:
        for _ in range(50):
            s = pick(self._rng, SURNAMES)
            if s not in self._used:
                self._used.add(s)
                return s
        raise RuntimeError("ran out of surnames")  # pragma: no cover - 100 surnames, at most ~12 people

    def defendant(self) -> str:
        s = self._surname()
        if self._style == "ordinal":
            return s + "某" + pick(self._rng, ORDINALS)
        return s + self._style

    def victim(self) -> str:
        """Victims and witnesses: 刘某某 / 刘某, never a defendant's surname."""
        return self._surname() + ("某某" if self._rng.random() < 0.5 else "某")


def add_days(day: dt.date, days: int) -> dt.date:
    return day + dt.timedelta(days=days)


def birth_for_age(rng: random.Random, on: dt.date, age: int) -> dt.date:
    """A birthday such that the person is exactly ``age`` years old on ``on``."""
    latest = _shift_years(on, -age)
    earliest = add_days(_shift_years(on, -age - 1), 1)
    return add_days(earliest, int(rng.random() * ((latest - earliest).days + 1)))


def age_on(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _shift_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (clamped to the month's end), as custody terms are counted."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover


def date_text(day: dt.date) -> str:
    """``2019年3月5日`` as the body of a judgment writes dates."""
    return f"{day.year}年{day.month}月{day.day}日"


_CN_YEAR_DIGITS = str.maketrans("0123456789", "〇一二三四五六七八九")


def date_text_chinese(day: dt.date) -> str:
    """``二〇一九年三月五日`` as the judgment's closing date is written."""
    return (
        f"{str(day.year).translate(_CN_YEAR_DIGITS)}年{format_chinese_integer(day.month)}月"
        f"{format_chinese_integer(day.day)}日"
    )
