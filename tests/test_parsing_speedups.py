"""The parser's cheaper forms of a scan find what the plain scan finds.

Each speed-up replaced a regular expression or a loop by something cheaper on the same input: a
cue union grouped by first character, ``str.find`` walks for sentence ends, one pattern for the
Chinese characters of a court's name, a negative lookbehind for an entry's start, and substring
tests that skip a scan when no match can exist. Each is checked here against the form it replaced,
and each substring guard against the words it stands for, so that a new cue cannot slip past it.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sentencing.parsing import circumstances, court, defendants, mentions, quantities


def _flat_union(cues: tuple[tuple[object, tuple[str, ...]], ...], prefix: str) -> re.Pattern[str]:
    """The cue union as it was: every alternative in order, ungrouped."""
    alternatives = [
        f"{pattern}(?P<{prefix}{k}_{j}>)" for k, (_, patterns) in enumerate(cues) for j, pattern in enumerate(patterns)
    ]
    return re.compile("|".join(alternatives))


_CUE_WORDS = [
    "自首", "自动投案", "主动到公安局投案", "坦白", "如实供述", "认罪认罚", "签署了认罪认罚具结书", "当庭自愿认罪",
    "庭审中认罪认罚", "重大立功", "立功", "累犯", "前科核实", "前科", "曾因盗窃罪被判处", "刑满释放", "退赃",
    "退出了全部赃款",
    "赔偿", "谅解", "达成和解", "未遂", "犯罪中止", "系预备", "未满十八周岁", "已满十六周岁不满十八周岁", "已满75周岁",
    "幼女", "被害人系未成年人", "对象均为老年人", "聋哑人", "疫情防控期间", "胁从犯", "从犯", "起次要作用", "教唆犯",
    "主犯", "起组织、指挥作用", "被告人", "，", "。", "x",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_CUE_WORDS), max_size=12))
def test_grouped_cue_unions_match_the_flat_ones(words: list[str]) -> None:
    text = "".join(words)
    for cues, grouped, prefix in (
        (circumstances._CUES, circumstances._ALL_CUES, "c"),
        (circumstances._ROLE_CUES, circumstances._ALL_ROLES, "r"),
    ):
        flat = _flat_union(cues, prefix)  # type: ignore[arg-type]
        assert [(m.span(), m.lastgroup) for m in grouped.finditer(text)] == [
            (m.span(), m.lastgroup) for m in flat.finditer(text)
        ]


def test_a_cue_that_does_not_begin_with_a_plain_character_is_refused() -> None:
    for pattern in ("[自坦]首", "自?首", "(?:自首)"):
        try:
            circumstances._union(((None, (pattern,)),), "c")
        except ValueError as exc:
            assert pattern in str(exc)
        else:
            raise AssertionError(f"{pattern!r} accepted")


def _literal(pattern: str) -> str:
    """A cue pattern as the text it matches, its lookarounds dropped; fails on any other syntax."""
    text = re.sub(r"\(\?<?[!=][^)]*\)", "", pattern)
    assert not set(text) & set("\\.^$*+?{}[]()|"), f"{pattern!r} is not a plain word: review its guard"
    return text


def test_every_role_cue_passes_the_role_guard() -> None:
    for _, patterns in circumstances._ROLE_CUES:
        for pattern in patterns:
            assert circumstances._may_name_a_role(_literal(pattern)), pattern
    assert not circumstances._may_name_a_role("被告人陈某自愿认罪认罚，依法可以从宽处理。")


def test_every_injury_grade_and_weight_unit_holds_its_guard_character() -> None:
    grades = re.search(r"\(\?P<grade>([^)]*)\)", quantities._INJURY.pattern)
    assert grades is not None and set(grades.group(1).split("|")) == set(quantities._GRADES)
    assert all("伤" in grade for grade in quantities._GRADES)
    units = re.search(r"\(\?P<unit>([^)]*)\)", quantities._WEIGHT_UNIT.pattern)
    assert units is not None
    assert all(any(ch in unit for ch in "克斤gG") for unit in units.group(1).split("|"))
    alcohol = re.sub(r"^\(\?=\[[^]]*\]\)\(\?:", "", quantities._ALCOHOL.pattern)  # without the first-character filter
    assert alcohol.startswith("(?:酒精|乙醇)"), "find_quantities skips texts without 酒精 or 乙醇"


def test_guarded_quantities_are_still_found() -> None:
    text = "经鉴定，被害人二人均为轻伤二级。被告人血液中乙醇含量为85mg/100ml。查获甲基苯丙胺5.6克。"
    attributor = mentions.Attributor(text, mentions.NameFinder(["张某"]))
    kinds = {f.kind for f in quantities.find_quantities(text, "facts", attributor)}
    assert {"injury:light_2", "alcohol", "drug:甲基苯丙胺"} <= kinds


_SENTENCE_END = re.compile(r"[。；;！？!?\n]")


def _bounds_by_pattern(text: str) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() - start > 1:
            starts.append(start)
            ends.append(m.end())
        start = m.end()
    if start < len(text):
        starts.append(start)
        ends.append(len(text))
    return starts, ends


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="。；;！？!?\n被告人a ", max_size=40))
def test_sentence_bounds_match_a_scan_for_terminators(text: str) -> None:
    assert mentions.sentence_bounds(text) == _bounds_by_pattern(text)


_HAN = re.compile(r"[\u4e00-\u9fff]")


def _court_name_start_by_walking(text: str, pos: int) -> int:
    start = pos
    while start > 0 and pos - start < 40 and _HAN.match(text[start - 1]):
        start -= 1
    return start


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="吉林省农安县 ，a1【】", max_size=90), st.integers(0, 90))
def test_court_name_start_matches_a_walk_back(text: str, pos: int) -> None:
    pos = min(pos, len(text))
    found = court._HAN_RUN_TO_END.search(text, max(0, pos - 40), pos)
    assert found is not None and found.start() == _court_name_start_by_walking(text, pos)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="被告人上诉原审单位（）张三，。；: \n犯辩护", max_size=40), st.integers(0, 10))
def test_entry_patterns_match_their_start_of_text_or_after_form(text: str, start: int) -> None:
    old_entry = re.compile(
        rf"(?:^|(?<=[\s。；;：:）)]))(?P<label>{defendants._LABEL})\s*[：:]?\s*(?:自报)?(?P<name>[^，,。；;（(：:\s、]{{1,40}})"
    )
    old_end = re.compile(
        r"(?:^|(?<=[\s。；;]))(?:辩护人|诉讼代表人|委托代理人|法定代理人|指定辩护人|公诉机关|原公诉机关|抗诉机关)"
    )
    for old, new in ((old_entry, defendants._ENTRY), (old_end, defendants._ENTRY_END)):
        assert [(m.span(), m.groupdict()) for m in new.finditer(text, start)] == [
            (m.span(), m.groupdict()) for m in old.finditer(text, start)
        ]
