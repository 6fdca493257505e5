"""Who a sentence is about: defendant names in facts and reasoning, for attributing what it says.

A circumstance or quantity belongs to the defendants named in the same clause, else to the
nearest named group before it in the same sentence (``被告人张某、李某具有坦白情节`` names both), else
to the subject of the previous sentence, else — with one defendant — to that defendant, or to all
when the sentence says so (``两被告人``, ``各被告人``, ``上述被告人…均``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence

from sentencing.case import looks_like_unit

_SENTENCE_ENDS = "。；;！？!?\n"
_ALL = re.compile(
    r"[两二三四五六七八九十多数各]名?被告人|各被告|上述被告人|全体被告人|本案被告人均|被告人均|被告人等均"
)
_CLAUSE_BREAK = re.compile(r"[，,：:]")
_GROUP_GLUE = re.compile(r"^[、，,和及与\s]*(?:被告人|被告单位)?$")
# Names a sale or hand-over goes to (``推销给被告人李某甲、蒋某甲``, ``售予``): the sentence is about its
# subject, not about them.
_RECIPIENT_BEFORE = re.compile(r"(?:给|予)(?:被告人|被告单位)?$")
# A note in brackets about a person other than a defendant (``伙同方某（系未成年人，分案处理）``) says nothing
# of the defendants: what it holds is nobody's here.
_NOTE_ABOUT = re.compile(r"[（(](?:系|另案|已判|均已|在逃|同案)")
# A name that modifies a noun (``王×1所经营的“美妆专营店”``, ``李某的账户``) is no subject of the sentence.
_MODIFIER_AFTER = re.compile(r"所|的")


def in_quotes(text: str, pos: int) -> bool:
    """Whether ``pos`` lies inside “…”: quoted speech or quoted law, which asserts nothing of the case."""
    return text.rfind("“", 0, pos) > text.rfind("”", 0, pos)


def sentence_bounds(text: str) -> tuple[list[int], list[int]]:
    """Starts and ends of the text's sentences; a lone terminator (``。。``) is no sentence."""
    starts: list[int] = []
    ends: list[int] = []
    start = 0
    for stop in _after_each(text, _SENTENCE_ENDS):
        if stop - start > 1:
            starts.append(start)
            ends.append(stop)
        start = stop
    if start < len(text):
        starts.append(start)
        ends.append(len(text))
    return starts, ends


def _after_each(text: str, chars: str) -> list[int]:
    """The positions just after each occurrence of any of ``chars``, in order.

    A ``str.find`` walk per character: a text holds few terminators, and finding one character
    costs a fraction of testing every position against a character class.
    """
    out: list[int] = []
    for ch in chars:
        pos = text.find(ch)
        while pos >= 0:
            out.append(pos + 1)
            pos = text.find(ch, pos + 1)
    out.sort()
    return out


class NameFinder:
    """Finds the defendants' names in a text; longer names first (``刘某甲`` before ``刘某``).

    Plain substring search: a case has a handful of names, and compiling a pattern per case
    would cost more than the search itself.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(dict.fromkeys(n for n in names if n))
        # ``被告单位`` stands for the one corporate defendant when there is exactly one.
        units = [n for n in self.names if looks_like_unit(n)]
        self.aliases = {"被告单位": units[0]} if len(units) == 1 else {}
        self._search = sorted({*self.names, *self.aliases}, key=lambda n: (-len(n), n))

    def matches(self, text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int, str]]:
        """Non-overlapping ``(start, end, name)`` occurrences in ``text[start:end]``, in order.

        An occurrence is skipped when it starts inside one already taken (a longer name's).
        """
        end = len(text) if end is None else end
        taken: list[tuple[int, int, str]] = []
        if len(self._search) == 1:
            (name,) = self._search
            stop = -1
            pos = text.find(name, start, end)
            while pos >= 0:
                if pos >= stop:  # one name: only its own previous occurrence can cover this one
                    stop = pos + len(name)
                    taken.append((pos, stop, name))
                pos = text.find(name, pos + 1, end)
        else:
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
        if not self.aliases:
            return taken
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
    """Walks a text sentence by sentence and says whom a position in it is about.

    With one defendant (most cases) everything is about that defendant: names are not even looked for.
    """

    def __init__(self, text: str, finder: NameFinder) -> None:
        self.text = text
        self.finder = finder
        self.all = tuple(finder.names)
        self._starts, self._ends = sentence_bounds(text)
        self._notes = _NOTE_ABOUT.search(text) is not None  # most texts have none: who() then skips the check
        # Named groups per sentence (by index); only needed to tell several defendants apart.
        self._groups: list[list[tuple[int, int, tuple[str, ...]]]] = []
        if len(self.all) > 1:
            every = finder.matches(text)
            k = 0
            for start, end in zip(self._starts, self._ends, strict=True):
                while k < len(every) and every[k][0] < start:
                    k += 1
                j = k
                while j < len(every) and every[j][1] <= end:
                    j += 1
                self._groups.append(group_matches(text, every[k:j]) if j > k else [])
                k = j

    def sentence_index(self, pos: int) -> int:
        """The index of the sentence holding ``pos`` (the last one starting at or before it; 0 if none)."""
        return max(0, bisect_right(self._starts, pos) - 1)

    def sentence_at(self, pos: int) -> tuple[int, int]:
        """``(start, end)`` of the sentence holding ``pos``; the whole text when it has no sentences."""
        if not self._starts:
            return 0, len(self.text)
        k = self.sentence_index(pos)
        return self._starts[k], self._ends[k]

    def _named_before(self, at: int) -> tuple[str, ...]:
        """The defendants named right before ``at`` (a bracket's opening); empty when it follows another."""
        if len(self.all) == 1:
            (name,) = self.all
            spelled = [name, *(alias for alias, named in self.finder.aliases.items() if named == name)]
            return self.all if any(self.text.endswith(n, 0, at) for n in spelled) else ()
        k = self.sentence_index(at)
        named = [g for g in self._groups[k] if g[1] == at]
        return named[0][2] if named else ()

    def who(self, pos: int) -> tuple[str, ...]:
        """The defendants that the text at ``pos`` is about; empty when it cannot be told."""
        if len(self.all) == 1 and not self._notes:
            return self.all
        if not self.all:
            return ()
        if not self._starts:
            return self.all if len(self.all) == 1 else ()  # no sentence, no names (an empty text)
        k = self.sentence_index(pos)
        sent_start, sent_end = self._starts[k], self._ends[k]
        text = self.text
        rfind = text.rfind
        if self._notes:
            opened = max(rfind("（", sent_start, pos), rfind("(", sent_start, pos))
            if opened >= 0 and _NOTE_ABOUT.match(text, opened) and max(rfind("）", opened, pos),
                                                                        rfind(")", opened, pos)) < 0:
                return self._named_before(opened)
        if len(self.all) == 1:
            return self.all
        groups = self._groups[k]
        clause_start = max(
            sent_start,
            max(rfind("，", sent_start, pos), rfind(",", sent_start, pos), rfind("：", sent_start, pos),
                rfind(":", sent_start, pos)) + 1,
        )
        all_match = None
        for m in _ALL.finditer(text, sent_start, pos):
            all_match = m
        before = [g for g in groups if g[1] <= pos]
        if all_match and (not before or all_match.start() > before[-1][1]):
            return self.all
        in_clause = [g for g in before if g[0] >= clause_start]
        if in_clause:
            return in_clause[-1][2]
        if before:
            # Earlier in the sentence, not in the cue's clause: its subject, not the recipients of a sale
            # nor a name that only modifies a noun.
            subjects = [g for g in before if not _RECIPIENT_BEFORE.search(text, max(sent_start, g[0] - 6), g[0])
                        and not _MODIFIER_AFTER.match(text, g[1])]
            return (subjects or before)[-1][2]
        # A name after the cue in the same clause (``系从犯的被告人李某``).
        clause_end = _CLAUSE_BREAK.search(text, pos, sent_end)
        limit = clause_end.start() if clause_end else sent_end
        after = [g for g in groups if g[0] >= pos and g[0] < limit]
        if after:
            return after[0][2]
        # The subject of the previous sentences.
        for prev in reversed(self._groups[max(0, k - 2):k]):
            if prev:
                return prev[-1][2]
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
    positions with one set test, which makes scanning a judgment several times faster. A pattern
    whose every branch starts with a literal (``辩称|辩解|上诉称``) is left as it is: the regex
    engine already skips to its first characters, two to three times faster than the lookahead.
    """
    from re import _compiler, _parser  # type: ignore[attr-defined]

    parsed = _parser.parse(pattern)
    try:
        literal = _compiler._get_literal_prefix(parsed, 0)[0]
        prefixed = bool(literal) or _compiler._get_charset_prefix(parsed, 0) is not None
    except (AttributeError, TypeError):  # the engine's internals differ: the lookahead is never wrong
        prefixed = False
    if prefixed:
        return re.compile(pattern)
    chars = _first_chars(list(parsed))
    if not chars:
        return re.compile(pattern)
    charset = "".join(sorted(re.escape(ch) for ch in chars))
    return re.compile(f"(?=[{charset}])(?:{pattern})")
