"""Masking party names (隐名处理) in what the API shows: 张三 → 张某, 欧阳明 → 欧阳某.

Published judgments mask parties the same way; names already masked (张某, 张某某) stay as they are.
"""

from __future__ import annotations

COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 独孤 南宫 西门 轩辕 澹台 "
    "呼延 万俟 闻人 申屠 太史 赫连 拓跋 完颜".split()
)


def mask_name(name: str) -> str:
    """The surname followed by 某; names of one character, or already masked, are returned unchanged."""
    name = name.strip()
    if len(name) < 2 or "某" in name[1:3] or not ("\u4e00" <= name[0] <= "\u9fff"):
        return name
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[:1]
    return surname + "某"


def mask_text(text: str, names: list[str]) -> str:
    """``text`` with every occurrence of each full name replaced by its masked form (longest names first)."""
    for name in sorted({n.strip() for n in names if n.strip()}, key=len, reverse=True):
        masked = mask_name(name)
        if masked != name:
            text = text.replace(name, masked)
    return text
