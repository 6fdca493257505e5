"""Chinese and Arabic numerals as they appear in judgments.

Judgments mix forms freely: ``一年六个月``, ``十个月``, ``二十年``, ``三千五百元``, ``1.5万元``,
``人民币二万元``, full-width ``３０００元``, thousands separators (``3，000元``) and year
digits written one by one (``二〇一七``). Everything that turns such text into a number lives here.
"""

from __future__ import annotations

import re
from functools import lru_cache

_DIGITS = {
    "零": 0, "〇": 0, "○": 0, "Ｏ": 0, "0": 0,
    "一": 1, "壹": 1, "幺": 1,
    "二": 2, "贰": 2, "两": 2, "俩": 2,
    "三": 3, "叁": 3,
    "四": 4, "肆": 4,
    "五": 5, "伍": 5,
    "六": 6, "陆": 6,
    "七": 7, "柒": 7,
    "八": 8, "捌": 8,
    "九": 9, "玖": 9,
}
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}

_FULLWIDTH = str.maketrans("０１２３４５６７８９．，", "0123456789.,")

CHINESE_NUMERAL_CHARS = "".join(_DIGITS) + "".join(_SMALL_UNITS) + "".join(_BIG_UNITS)
"""Characters that can make up a Chinese numeral (for building regular expressions)."""

NUMBER_PATTERN = (
    rf"(?:[0-9０-９][0-9０-９,，]*(?:[.．][0-9０-９]+)?[万萬亿億]?|[{CHINESE_NUMERAL_CHARS}]+(?:点[{CHINESE_NUMERAL_CHARS}]+)?)"
)
"""A regular expression (no groups) matching one number in any of the forms this module reads."""


_ARABIC = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?")
_ARABIC_BIG = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?[万萬亿億]")
_BIG_UNITS_DESCENDING = sorted(_BIG_UNITS.items(), key=lambda kv: -kv[1])


class NumeralError(ValueError):
    """Raised when a text is not a number this module can read."""


def normalise_digits(text: str) -> str:
    """Full-width digits and punctuation to ASCII."""
    return text.translate(_FULLWIDTH)


def _parse_section(text: str) -> int:
    """A numeral below 10,000 (``三千五百``, ``十二``, ``一〇五``)."""
    total = 0
    digit: int | None = None
    for ch in text:
        if ch in _DIGITS:
            # Positional digits (二〇一七) when two digits follow each other.
            digit = _DIGITS[ch] if digit is None else digit * 10 + _DIGITS[ch]
        elif ch in _SMALL_UNITS:
            total += (1 if digit is None else digit) * _SMALL_UNITS[ch]
            digit = None
        else:
            raise NumeralError(f"not a Chinese numeral: {text!r}")
    if digit is not None:
        total += digit
    return total


def parse_chinese_integer(text: str) -> int:
    """``二十三`` → 23, ``一万五千`` → 15000, ``二〇一七`` → 2017, ``两亿`` → 200000000."""
    text = text.strip()
    if not text:
        raise NumeralError("empty numeral")
    for unit_char, unit in _BIG_UNITS_DESCENDING:
        if unit_char in text:
            # Split at the last occurrence so that 一万亿 reads as (一万)×亿.
            head, _, tail = text.rpartition(unit_char)
            total = (parse_chinese_integer(head) if head else 1) * unit
            if not tail:
                return total
            # ``一万五`` means 15000: a lone trailing digit after a big unit is one place lower.
            if len(tail) == 1 and tail in _DIGITS:
                return total + _DIGITS[tail] * unit // 10
            return total + parse_chinese_integer(tail.removeprefix("零") or "零")
    return _parse_section(text)


@lru_cache(maxsize=8192)
def parse_number(text: str) -> float:
    """Any single number: Arabic (``3,000``, ``1.5万``, ``３０``) or Chinese (``三点五``, ``一万二千``).

    Cached: a corpus writes the same few thousand numbers (``六个月``, ``二千元``) over and over.
    """
    raw = normalise_digits(text.strip())
    if not raw:
        raise NumeralError("empty number")
    multiplier = 1
    if raw[-1] in _BIG_UNITS and _ARABIC_BIG.fullmatch(raw):
        multiplier = _BIG_UNITS[raw[-1]]
        raw = raw[:-1]
    if _ARABIC.fullmatch(raw):
        return float(raw.replace(",", "")) * multiplier
    if "点" in raw:
        whole, _, frac = raw.partition("点")
        if not frac or any(ch not in _DIGITS for ch in frac):
            raise NumeralError(f"not a number: {text!r}")
        integer = parse_chinese_integer(whole) if whole else 0
        return integer + float("0." + "".join(str(_DIGITS[ch]) for ch in frac))
    return float(parse_chinese_integer(raw))


def parse_int(text: str) -> int:
    """A whole number in any form; raises when the text has a fraction."""
    value = parse_number(text)
    if value != int(value):
        raise NumeralError(f"not a whole number: {text!r}")
    return int(value)


_CN_DIGITS = "零一二三四五六七八九"


def _format_section(n: int) -> str:
    """0 < n < 10000 in the written style of judgments (``一千零五``)."""
    parts: list[str] = []
    zero_pending = False
    for unit, char in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, unit)
        if d:
            if zero_pending:
                parts.append("零")
                zero_pending = False
            parts.append(_CN_DIGITS[d] + char)
        elif parts:
            zero_pending = True
    return "".join(parts)


def format_chinese_integer(n: int) -> str:
    """23 → ``二十三``, 10 → ``十``, 15000 → ``一万五千``; the inverse of :func:`parse_chinese_integer`."""
    if n < 0:
        raise NumeralError("negative numbers are not written in judgments")
    if n == 0:
        return "零"
    out = ""
    yi, rest = divmod(n, 100_000_000)
    wan, low = divmod(rest, 10_000)
    if yi:
        out += format_chinese_integer(yi) + "亿"
    if wan:
        if out and wan < 1000:
            out += "零"
        out += _format_section(wan) + "万"
    elif out and low:
        out += "零"
    if low:
        if (yi or wan) and low < 1000 and not out.endswith("零"):
            out += "零"
        out += _format_section(low)
    if out.startswith("一十"):
        out = out[1:]  # 十二, 十万, not 一十二, 一十万

    return out


def parse_amount_yuan(text: str) -> float:
    """``人民币1.5万元`` → 15000.0, ``三千五百元`` → 3500.0, ``3，000元`` → 3000.0."""
    raw = normalise_digits(text).strip()
    raw = raw.removeprefix("人民币").removesuffix("元").strip()
    return parse_number(raw)
