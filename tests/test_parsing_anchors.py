"""Checks that read on from a position (``pattern.match(text, pos)``) fire there.

Python's ``^`` matches only at the real start of the string, never at ``pos``: written with it,
these checks never fired. ``match`` anchors at ``pos`` by itself.
"""

from __future__ import annotations

from sentencing.case import CircumstanceCode
from sentencing.parsing import circumstances, quantities
from sentencing.parsing.mentions import Attributor, NameFinder


def _findings(text: str) -> dict[CircumstanceCode | None, bool]:
    attributor = Attributor(text, NameFinder(["张三"]))
    return {f.code: f.negated for f in circumstances.find_circumstances(text, "reasoning", attributor)}


def test_a_negation_after_the_cue_negates_it() -> None:
    assert _findings("本院认为，被告人张三自首不成立。")[CircumstanceCode.SURRENDER] is True
    assert _findings("张三构成自首的条件不符。")[CircumstanceCode.SURRENDER] is True
    assert _findings("本院认为，被告人张三自动投案，如实供述自己的罪行，系自首，依法可以从轻处罚。")[
        CircumstanceCode.SURRENDER] is False


def test_a_count_of_offences_followed_by_the_act_is_read_without_a_prefix() -> None:
    text = "经审理查明，被告人张三在其家中三次容留他人吸食冰毒。"
    found = [f for f in quantities.find_quantities(text, "facts", Attributor(text, NameFinder(["张三"])))
             if f.kind == "occurrences"]
    assert [(f.value, f.evidence.text) for f in found] == [(3.0, "三次")]
    text = "经审理查明，被告人张三曾三次被行政处罚。"  # not followed by an act of the crime
    assert not [f for f in quantities.find_quantities(text, "facts", Attributor(text, NameFinder(["张三"])))
                if f.kind == "occurrences"]
