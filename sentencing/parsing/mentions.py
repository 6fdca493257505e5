"""Who a sentence is about: defendant names in facts and reasoning, for attributing what it says.

A circumstance or quantity belongs to the defendants named in the same clause, else to the
nearest named group before it in the same sentence (``被告人张某、李某具有坦白情节`` names both), else
to the subject of the previous sentence, else — with one defendant — to that defendant, or to all
when the sentence says so (``两被告人``, ``各被告人``, ``上述被告人…均``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"[。；;！？!?\n]")
_ALL = re.compile(
    r"[两二三四五六七八九十多数各]名?被告人|各被告|上述被告人|全体被告人|本案被告人均|被告人均|被告人等均"
)
_CLAUSE_BREAK = re.compile(r"[，,：:]")
_UNIT = re.compile(r"公司|厂|集团|中心|合作社|商行|商店|企业|单位|医院|学校|协会|银行")
_GROUP_GLUE = re.compile(r"^[、，,和及与\s]*(?:被告人|被告单位)?$")


@dataclass(frozen=True, slots=True)
class Sentence:
    start: int
    end: int


def sentences(text: str) -> Iterator[Sentence]:
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() - start > 1:
            yield Sentence(start, m.end())
        start = m.end()
    if start < len(text):
        yield Sentence(start, len(text))


class NameFinder:
    """Finds the defendants' names in a text; longer names first (``刘某甲`` before ``刘某``).

    Plain substring search: a case has a handful of names, and compiling a pattern per case
    would cost more than the search itself.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(dict.fromkeys(n for n in names if n))
        # ``被告单位`` stands for the one corporate defendant when there is exactly one.
        units = [n for n in self.names if _UNIT.search(n)]
        self.aliases = {"被告单位": units[0]} if len(units) == 1 else {}
        self._search = sorted({*self.names, *self.aliases}, key=lambda n: (-len(n), n))

    def matches(self, text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int, str]]:
        """Non-overlapping ``(start, end, name)`` occurrences in ``text[start:end]``, in order."""
        end = len(text) if end is None else end
        taken: list[tuple[int, int, str]] = []
        covered: set[int] = set()
        for name in self._search:
            pos = text.find(name, start, end)
            while pos >= 0:
                if pos not in covered:
                    stop = pos + len(name)
                    taken.append((pos, stop, name))
                    covered.update(range(pos, stop))
                pos = text.find(name, pos + 1, end)
        taken.sort()
        out = []
        for pos, stop, name in taken:
            if name in self.aliases:
                # ``被告单位扬州…公司`` names the unit right after: let the name itself count.
                if any(text.startswith(n, stop) for n in self.names):
                    continue
                name = self.aliases[name]
            out.append((pos, stop, name))
        return out

    def groups(self, text: str, start: int, end: int) -> list[tuple[int, int, tuple[str, ...]]]:
        """Named groups in ``text[start:end]``: runs of names joined by 、/和/及 (``张某、李某``)."""
        return group_matches(text, self.matches(text, start, end))


def group_matches(text: str, matches: list[tuple[int, int, str]]) -> list[tuple[int, int, tuple[str, ...]]]:
    out: list[tuple[int, int, tuple[str, ...]]] = []
    for pos, stop, name in matches:
        if out and _GROUP_GLUE.match(text[out[-1][1]:pos]):
            g_start, _, names = out[-1]
            out[-1] = (g_start, stop, names if name in names else (*names, name))
        else:
            out.append((pos, stop, (name,)))
    return out


class Attributor:
    """Walks a text sentence by sentence and says whom a position in it is about."""

    def __init__(self, text: str, finder: NameFinder) -> None:
        self.text = text
        self.finder = finder
        self.all = tuple(finder.names)
        self._sentences = list(sentences(text))
        every = finder.matches(text)
        self._groups: dict[int, list[tuple[int, int, tuple[str, ...]]]] = {}
        k = 0
        for sent in self._sentences:
            while k < len(every) and every[k][0] < sent.start:
                k += 1
            j = k
            while j < len(every) and every[j][1] <= sent.end:
                j += 1
            self._groups[sent.start] = group_matches(text, every[k:j]) if j > k else []
            k = j
        self._starts = [s.start for s in self._sentences]

    def sentence_at(self, pos: int) -> Sentence:
        lo, hi = 0, len(self._starts)
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if self._starts[mid] <= pos:
                lo = mid
            else:
                hi = mid
        return self._sentences[lo] if self._sentences else Sentence(0, len(self.text))

    def who(self, pos: int) -> tuple[str, ...]:
        """The defendants that the text at ``pos`` is about; empty when it cannot be told."""
        if len(self.all) == 1:
            return self.all
        if not self.all:
            return ()
        sent = self.sentence_at(pos)
        groups = self._groups.get(sent.start, [])
        head = self.text[sent.start:pos]
        clause_start = sent.start + max(head.rfind(c) for c in "，,：:") + 1
        all_match = None
        for m in _ALL.finditer(self.text, sent.start, pos):
            all_match = m
        before = [g for g in groups if g[1] <= pos]
        if all_match and (not before or all_match.start() > before[-1][1]):
            return self.all
        in_clause = [g for g in before if g[0] >= clause_start]
        if in_clause:
            return in_clause[-1][2]
        if before:
            return before[-1][2]
        # A name after the cue in the same clause (``系从犯的被告人李某``).
        clause_end = _CLAUSE_BREAK.search(self.text, pos, sent.end)
        limit = clause_end.start() if clause_end else sent.end
        after = [g for g in groups if g[0] >= pos and g[0] < limit]
        if after:
            return after[0][2]
        # The subject of the previous sentences.
        idx = self._starts.index(sent.start) if sent.start in self._starts else 0
        for prev in reversed(self._sentences[max(0, idx - 2):idx]):
            prev_groups = self._groups.get(prev.start, [])
            if prev_groups:
                return prev_groups[-1][2]
        return ()


def _first_chars(items: list) -> set[str] | None:  # type: ignore[type-arg]
    """Characters a parsed regular expression can start with; None when any could."""
    from re import _constants as c  # type: ignore[attr-defined]

    out: set[str] = set()
    for op, av in items:
        if op is c.LITERAL:
            out.add(chr(av))
            return out
        if op is c.IN:
            for kind, value in av:
                if kind is c.LITERAL:
                    out.add(chr(value))
                elif kind is c.RANGE and value[1] - value[0] < 200:
                    out.update(chr(x) for x in range(value[0], value[1] + 1))
                else:
                    return None
            return out
        if op in (c.ASSERT, c.ASSERT_NOT, c.AT):
            continue  # zero width: the next item decides
        if op is c.SUBPATTERN:
            sub = _first_chars(list(av[-1]))
            if sub is None:
                return None
            out |= sub
            return out
        if op is c.BRANCH:
            for alternative in av[1]:
                sub = _first_chars(list(alternative))
                if sub is None:
                    return None
                out |= sub
            return out
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, _, body = av
            sub = _first_chars(list(body))
            if sub is None:
                return None
            out |= sub
            if low >= 1:
                return out
            continue
        return None
    return None


def with_first_char_filter(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled behind a one-character lookahead of its possible first characters.

    A long alternation is tried branch by branch at every position; the lookahead rejects most
    positions with one set test, which makes scanning a judgment several times faster.
    """
    from re import _parser  # type: ignore[attr-defined]

    chars = _first_chars(list(_parser.parse(pattern)))
    if not chars:
        return re.compile(pattern)
    charset = "".join(sorted(re.escape(ch) for ch in chars))
    return re.compile(f"(?=[{charset}])(?:{pattern})")
