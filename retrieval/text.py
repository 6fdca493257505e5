"""Case → document text for retrieval, and the tokens of the sparse side (retrieval.sparse).

The document of one defendant is what a prosecutor knows before judgment (Case.before_judgment):
the charges (罪名), the role (地位), the circumstances (量刑情节), the amounts that select the
statutory tier, then the facts. It never contains a sentence, so a query and an indexed past
judgment are described the same way.

Sparse tokens (version :data:`TOKENIZER_VERSION`) are jieba words without punctuation, function
words, bare numbers and date/time units (``2017 年 3 月 28 日 15 时许`` says when, not what), plus
one *field token* per header value (``罪名:盗窃``, ``情节:自首``, ``后果:轻伤二级``): a charge or a
circumstance is then one term that only another header can match, not a word that free text also
uses (``盗窃`` in the facts of a robbery) or that jieba cuts into pieces (容留 / 他人 / 吸毒).
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Iterable

from sentencing.case import Case, Defendant, Role

MAX_FACT_CHARS = 1500
"""Facts beyond this are cut: the opening of 经审理查明 carries the offence; long tails are evidence lists."""
HEADER_WEIGHT = 3
"""The structured header is written this many times: mean pooling and the sparse term counts then weigh
the charges, role and circumstances (known, normalised facts) above any single phrase of free text."""

TOKENIZER_VERSION = 2
"""Bumped whenever :func:`tokenize` changes its output: an index's stored tokens name the version
they were made with, and one made with another version is refused (retrieval.sparse)."""

_PUNCT_OR_SPACE = re.compile(r"^[\s\W_]+$")
_STOPWORDS = frozenset(
    "的 了 在 和 与 及 其 等 并 将 对 于 被 为 是 以 由 之 也 又 而 后 时 中 上 下 该 此 人民币 元".split()
    + "年 月 日 许 分 秒 号 第".split()  # date, time and numbering units: when, not what
)
_NUMBER = re.compile(r"^[\d.,，]+$")
HEADER_LABELS = ("罪名", "地位", "情节", "数额", "毒品", "后果", "次数")
"""The labels :func:`defendant_header` writes; a sentence ``label：value`` yields field tokens."""
_LISTED = frozenset({"罪名", "情节"})
"""Header fields whose value is a 、-separated list (one field token per item)."""
_HEADER_FIELD = re.compile(r"^(" + "|".join(HEADER_LABELS) + r")：(.+)$")
FIELD_SEPARATOR = ":"


def segment(text: str) -> list[str]:
    """jieba's words of ``text`` (precise mode, no HMM), segmented by rjieba: the Rust port of jieba
    with the same dictionary and algorithm, about 17× faster and word-for-word equal
    (tests/test_retrieval_segmenter.py holds it to jieba on real judgments and on fuzzed text)."""
    return _cut()(text, False)


@functools.cache
def _cut():
    from rjieba import cut  # loads the dictionary (0.2 s): only when text is first segmented

    return cut


def amount_phrase(amount_yuan: float | None) -> str:
    """A coarse magnitude of the amount (数额), so that 3,200 元 and 3,500 元 read alike."""
    if amount_yuan is None or amount_yuan <= 0:
        return ""
    bands = (
        (1_000, "千元以下"),
        (10_000, "数千元"),
        (100_000, "数万元"),
        (1_000_000, "数十万元"),
        (10_000_000, "数百万元"),
    )
    for upper, label in bands:
        if amount_yuan < upper:
            return label
    return "千万元以上"


def defendant_header(defendant: Defendant) -> str:
    """The structured part of a defendant's document: charges, role, circumstances, quantities."""
    parts: list[str] = []
    if defendant.charges:
        parts.append("罪名：" + "、".join(c.name for c in defendant.charges))
    if defendant.role is not Role.SOLE:
        parts.append("地位：" + defendant.role.label)
    codes = sorted({c.code for c in defendant.circumstances}, key=lambda c: c.value)
    if codes:
        parts.append("情节：" + "、".join(c.label for c in codes))
    q = defendant.quantities
    if q.amount_yuan is not None and (phrase := amount_phrase(q.amount_yuan.value)):
        parts.append("数额：" + phrase)
    if q.drug_grams:
        total = sum(m.value for m in q.drug_grams.values())
        drugs = "、".join(sorted(q.drug_grams))
        parts.append(f"毒品：{drugs}约{_grams_band(total)}")
    if q.injuries:
        worst = max(q.injuries, key=lambda i: i.grade.rank)
        parts.append("后果：" + worst.grade.label)
    if q.deaths is not None and q.deaths.value > 0:
        parts.append("后果：致人死亡")
    if q.occurrences is not None and q.occurrences.value >= 3:
        parts.append("次数：多次")
    return "。".join(parts)


def _grams_band(grams: float) -> str:
    if grams <= 0:
        return "少量"
    return f"{10 ** math.floor(math.log10(grams)):g}克级"


def case_document(case: Case, defendant: Defendant, *, max_fact_chars: int = MAX_FACT_CHARS) -> str:
    """The text indexed for (and queried with) one defendant of a case; no outcome in it.

    Only fields known before judgment are read, so passing a judged case is safe: its sentence,
    judgment text and reasoning (本院认为 restates circumstances but may quote the sentence) are
    not used.
    """
    header = defendant_header(defendant)
    facts = case.facts.strip()[:max_fact_chars]
    return "。".join([header] * HEADER_WEIGHT + [facts]) if header else facts


def tokenize(text: str) -> list[str]:
    """Sparse tokens of a text: jieba words (no punctuation, function words, numbers, date units),
    then the field tokens of its header sentences (see the module docstring)."""
    return _words(text) + field_tokens(text)


def _words(text: str) -> list[str]:
    words = segment(text)
    # interned: a corpus's token lists share one string per word instead of one per occurrence
    return [
        sys.intern(w) for w in words if not _PUNCT_OR_SPACE.match(w) and w not in _STOPWORDS and not _NUMBER.match(w)
    ]


def field_tokens(text: str) -> list[str]:
    """``罪名:盗窃``-style tokens of the header sentences of a document (none for free text)."""
    out: list[str] = []
    if "：" not in text:
        return out
    for sentence in text.split("。"):
        m = _HEADER_FIELD.match(sentence.strip())
        if m is None:
            continue
        label, value = m.groups()
        values = value.split("、") if label in _LISTED else [value]
        # no whitespace inside a token: the stored token rows are space-separated
        out.extend(sys.intern(label + FIELD_SEPARATOR + "".join(v.split())) for v in values if v.strip())
    return out


def tokenize_query(text: str) -> list[str]:
    """``tokenize(text)``, segmented sentence by sentence through a cache.

    jieba never joins words across "。" (it segments runs of Han characters and alphanumerics
    only), so the words of the sentences are the words of the text. Co-defendants' documents share
    the facts and differ only in their short headers: a request's later defendants reuse the facts.
    """
    words: list[str] = []
    for sentence in text.split("。"):
        words.extend(_sentence_words(sentence))
    return words + field_tokens(text)


@functools.lru_cache(maxsize=8192)
def _sentence_words(sentence: str) -> tuple[str, ...]:
    return tuple(_words(sentence))


def tokenize_many(texts: Iterable[str]) -> list[list[str]]:
    return [tokenize(t) for t in texts]


def masked_name(name: str) -> str:
    """A defendant's name as judgments publish it (张某): surname kept, the rest masked."""
    name = name.strip()
    if not name or "某" in name or "×" in name or "X" in name:
        return name or "某"
    return name[0] + "某"
