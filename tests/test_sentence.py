"""Numerals and sentences: hand-checked forms from real judgments, and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentencing.metrics import cail_term_score
from sentencing.numerals import format_chinese_integer, parse_amount_yuan, parse_chinese_integer, parse_number
from sentencing.sentence import (
    Sentence,
    SentenceForm,
    SentenceKind,
    format_duration,
    format_sentence,
    parse_duration_months,
    parse_sentence,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("十", 10), ("十二", 12), ("二十", 20), ("一百零五", 105), ("三千五百", 3500), ("一万五千", 15000),
        ("一万五", 15000), ("两万", 20000), ("二〇一七", 2017), ("二0一七", 2017), ("一亿二千万", 120_000_000),
        ("一千零一", 1001), ("十万", 100_000), ("壹仟", 1000),
    ],
)
def test_chinese_integers(text: str, value: int) -> None:
    assert parse_chinese_integer(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("人民币1.5万元", 15000), ("三千五百元", 3500), ("3，000元", 3000), ("３０００元", 3000), ("人民币二万元", 20000),
     ("2,500.50元", 2500.5)],
)
def test_amounts(text: str, value: float) -> None:
    assert parse_amount_yuan(text) == value


def test_decimal_chinese() -> None:
    assert parse_number("三点五") == 3.5


@given(st.integers(min_value=0, max_value=10**12))
def test_chinese_integer_round_trip(n: int) -> None:
    assert parse_chinese_integer(format_chinese_integer(n)) == n


@given(st.integers(min_value=1, max_value=300), st.booleans())
def test_duration_round_trip(months: int, arabic: bool) -> None:
    assert parse_duration_months(format_duration(months, arabic=arabic)) == months


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("有期徒刑一年六个月，缓刑二年，并处罚金人民币五千元",
         Sentence(kind=SentenceKind.FIXED_TERM, months=18, probation_months=24, fine_yuan=5000)),
        ("有期徒刑五年，并处罚金人民币一万元（刑期从判决执行之日起计算。即自二0一七年九月一日起至二0二二年八月三十一日止）",
         Sentence(kind=SentenceKind.FIXED_TERM, months=60, fine_yuan=10000)),
        ("拘役四个月，缓刑六个月，并处罚金人民币2000元",
         Sentence(kind=SentenceKind.DETENTION, months=4, probation_months=6, fine_yuan=2000)),
        ("免予刑事处罚", Sentence(kind=SentenceKind.EXEMPT)),
        ("罚金人民币三千元", Sentence(kind=SentenceKind.FINE_ONLY, fine_yuan=3000)),
        ("死刑，缓期二年执行，剥夺政治权利终身，并处没收个人全部财产",
         Sentence(kind=SentenceKind.DEATH_SUSPENDED, political_rights_for_life=True, confiscation=True)),
        ("无期徒刑，剥夺政治权利终身", Sentence(kind=SentenceKind.LIFE, political_rights_for_life=True)),
        ("死刑，剥夺政治权利终身", Sentence(kind=SentenceKind.DEATH, political_rights_for_life=True)),
        ("管制一年", Sentence(kind=SentenceKind.SURVEILLANCE, months=12)),
        ("有期徒刑十年六个月，剥夺政治权利二年，并处罚金人民币三万元",
         Sentence(kind=SentenceKind.FIXED_TERM, months=126, political_rights_months=24, fine_yuan=30000)),
        ("有期徒刑１年６个月", Sentence(kind=SentenceKind.FIXED_TERM, months=18)),
    ],
)
def test_parse_real_sentence_forms(text: str, expected: Sentence) -> None:
    assert parse_sentence(text) == expected


_sentences = st.one_of(
    st.builds(
        Sentence,
        kind=st.just(SentenceKind.FIXED_TERM),
        months=st.integers(6, 300),
        fine_yuan=st.none() | st.integers(1, 10**8),
        political_rights_months=st.none() | st.integers(1, 60),
    ),
    st.builds(
        Sentence,
        kind=st.just(SentenceKind.FIXED_TERM),
        months=st.integers(6, 36),
        probation_months=st.integers(12, 60),
        fine_yuan=st.none() | st.integers(1, 10**6),
    ),
    st.builds(Sentence, kind=st.just(SentenceKind.DETENTION), months=st.integers(1, 12),
              probation_months=st.none() | st.integers(2, 12), fine_yuan=st.none() | st.integers(1, 10**6)),
    st.builds(Sentence, kind=st.just(SentenceKind.SURVEILLANCE), months=st.integers(3, 36)),
    st.builds(Sentence, kind=st.just(SentenceKind.FINE_ONLY), fine_yuan=st.integers(1, 10**7)),
    st.builds(Sentence, kind=st.just(SentenceKind.EXEMPT)),
    st.builds(Sentence, kind=st.sampled_from([SentenceKind.LIFE, SentenceKind.DEATH, SentenceKind.DEATH_SUSPENDED]),
              political_rights_for_life=st.just(True), confiscation=st.booleans()),
)


@given(_sentences, st.booleans())
def test_sentence_round_trip(sentence: Sentence, arabic: bool) -> None:
    assert parse_sentence(format_sentence(sentence, arabic=arabic)) == sentence


def test_forms_and_terms() -> None:
    assert Sentence(kind=SentenceKind.FIXED_TERM, months=36, probation_months=36).form is SentenceForm.PROBATION
    assert Sentence(kind=SentenceKind.DETENTION, months=3).form is SentenceForm.CUSTODY
    assert Sentence(kind=SentenceKind.DEATH_SUSPENDED).term_months == -2
    assert Sentence(kind=SentenceKind.LIFE).term_months == -1
    with pytest.raises(ValueError, match="缓刑"):
        Sentence(kind=SentenceKind.FIXED_TERM, months=48, probation_months=48)


def test_cail_score_steps() -> None:
    assert cail_term_score(12, 12) == 1.0
    assert cail_term_score(-1, -1) == 1.0
    assert cail_term_score(-1, 180) == 0.0
    assert cail_term_score(12, 6) == 0.4  # |ln 13 − ln 7| = 0.62 falls in (0.6, 0.8]
