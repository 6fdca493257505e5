"""Provinces of the People's Republic of China as courts and case numbers name them.

Codes are ISO 3166-2:CN subdivision codes (``JS`` for Jiangsu); the Xinjiang Production and
Construction Corps (新疆生产建设兵团, 兵) has its own court system and gets ``XJB``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    abbreviation: str
    """The one-character abbreviation used in case numbers (``苏`` in ``（2018）苏0482刑初260号``)."""
    name: str
    """Short name (``江苏``)."""
    full_name: str
    """Official name (``江苏省``)."""
    alternative_abbreviation: str | None = None
    """The less common abbreviation (``陇`` for 甘肃, ``蜀``/``川``…)."""


PROVINCES: tuple[Province, ...] = (
    Province("BJ", "京", "北京", "北京市"),
    Province("TJ", "津", "天津", "天津市"),
    Province("HE", "冀", "河北", "河北省"),
    Province("SX", "晋", "山西", "山西省"),
    Province("NM", "蒙", "内蒙古", "内蒙古自治区"),
    Province("LN", "辽", "辽宁", "辽宁省"),
    Province("JL", "吉", "吉林", "吉林省"),
    Province("HL", "黑", "黑龙江", "黑龙江省"),
    Province("SH", "沪", "上海", "上海市"),
    Province("JS", "苏", "江苏", "江苏省"),
    Province("ZJ", "浙", "浙江", "浙江省"),
    Province("AH", "皖", "安徽", "安徽省"),
    Province("FJ", "闽", "福建", "福建省"),
    Province("JX", "赣", "江西", "江西省"),
    Province("SD", "鲁", "山东", "山东省"),
    Province("HA", "豫", "河南", "河南省"),
    Province("HB", "鄂", "湖北", "湖北省"),
    Province("HN", "湘", "湖南", "湖南省"),
    Province("GD", "粤", "广东", "广东省"),
    Province("GX", "桂", "广西", "广西壮族自治区"),
    Province("HI", "琼", "海南", "海南省"),
    Province("CQ", "渝", "重庆", "重庆市"),
    Province("SC", "川", "四川", "四川省", "蜀"),
    Province("GZ", "黔", "贵州", "贵州省", "贵"),
    Province("YN", "云", "云南", "云南省", "滇"),
    Province("XZ", "藏", "西藏", "西藏自治区"),
    Province("SN", "陕", "陕西", "陕西省", "秦"),
    Province("GS", "甘", "甘肃", "甘肃省", "陇"),
    Province("QH", "青", "青海", "青海省"),
    Province("NX", "宁", "宁夏", "宁夏回族自治区"),
    Province("XJ", "新", "新疆", "新疆维吾尔自治区"),
    Province("XJB", "兵", "新疆生产建设兵团", "新疆生产建设兵团"),
)

BY_CODE: dict[str, Province] = {p.code: p for p in PROVINCES}
BY_ABBREVIATION: dict[str, Province] = {p.abbreviation: p for p in PROVINCES}
BY_NAME: dict[str, Province] = {p.name: p for p in PROVINCES} | {p.full_name: p for p in PROVINCES}

MAINLAND_PROVINCES: tuple[Province, ...] = tuple(p for p in PROVINCES if p.code != "XJB")
"""The 31 provincial-level divisions (the Corps is not one)."""


class UnknownProvince(KeyError):
    pass


def province(code: str) -> Province:
    """The province for a code (``JS``), abbreviation (``苏``) or name (``江苏``/``江苏省``)."""
    for table in (BY_CODE, BY_ABBREVIATION, BY_NAME):
        if code in table:
            return table[code]
    raise UnknownProvince(code)
