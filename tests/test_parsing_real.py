"""The parsers on real and synthetic judgments: coverage, no crash on any query text, ground truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sentencing.case import Case
from sentencing.parsing import extract_defendant_facts, parse_judgment_document, strip_recommendation


def _records(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.real_data
def test_judge_every_defendant_gets_a_sentence_and_every_case_a_province(shared_data: Path) -> None:
    rows = _records(shared_data / "judge" / "judgments.jsonl")
    cases = [parse_judgment_document(r["fd"], case_id=f"judge:{r['text_id']}") for r in rows]
    defendants = [d for c in cases for d in c.defendants]
    assert len(defendants) >= len(cases)
    assert sum(d.sentence is not None for d in defendants) / len(defendants) >= 0.99
    assert all(c.province for c in cases)
    assert sum(len(c.defendants) > 1 for c in cases) >= 20
    for c in cases:
        for d in c.defendants:
            if d.sentence is not None and d.sentence.kind.has_term:
                # The imposed term never appears in the model inputs.
                stated = d.sentence.to_text().split("，")[0]
                assert stated not in c.facts and stated not in c.reasoning, (c.id, stated)


@pytest.mark.real_data
def test_no_crash_on_lecard_and_lecardv2_queries(shared_data: Path) -> None:
    v2 = [q for path in sorted((shared_data / "lecardv2").glob("*_query.json")) for q in _records(path)]
    assert len(v2) == 360
    for q in v2:
        case = parse_judgment_document(q["query"] + q.get("fact", ""), case_id=f"lecardv2:{q['id']}", source="lecardv2")
        assert case.judgment == "" or all(d.sentence is None for d in case.defendants) or case.defendants
    v1 = _records(shared_data / "lecard" / "query.json")
    assert len(v1) == 107
    for q in v1:
        case = extract_defendant_facts(Case(id=f"lecard:{q['ridx']}", facts=strip_recommendation(q["q"])))
        assert case.facts


@pytest.mark.real_data
def test_lecardv2_parties_named_in_passing_keep_their_names_and_charges(shared_data: Path) -> None:
    """LeCaRDv2 headers are often procedural only (appeals, summary trials): ``原审被告人韩某不服``,
    ``被告人叶某到庭参加了诉讼``, ``被告人彭某及其辩护人李某``. Before the name cut learnt those words, 72 of
    595 names held them and 80 defendants had no charge; now no name does, and at least 98% have their
    indicted charges (696 defendants, 10 without: a charge stated without 罪 or a name spelt two ways)."""
    procedural = re.compile(r"不服|到庭|及其|辩护|诉讼代表人|暨|提起|涉嫌")
    v2 = [q for path in sorted((shared_data / "lecardv2").glob("*_query.json")) for q in _records(path)]
    defendants = [
        d for q in v2
        for d in parse_judgment_document(q["query"] + q.get("fact", ""), case_id=f"lecardv2:{q['id']}",
                                         source="lecardv2").defendants
    ]
    assert len(defendants) >= 650
    assert not [d.name for d in defendants if procedural.search(d.name)]
    assert sum(bool(d.charges) for d in defendants) / len(defendants) >= 0.98


@pytest.mark.real_data
def test_lawbench_recommendations_are_stripped(shared_data: Path) -> None:
    rows = _records(shared_data / "lawbench" / "term_prediction.jsonl")
    with_recommendation = [r for r in rows if "建议判处" in r["question"]]
    assert with_recommendation
    for r in with_recommendation:
        assert "建议判处" not in strip_recommendation(r["question"])


def test_demo_corpus_ground_truth_is_recovered() -> None:
    demo = pytest.importorskip("sentencing.demo_corpus")
    pairs = list(demo.generate_pairs(150, 20261127))
    total = wrong = 0
    for doc, truth in pairs:
        case = parse_judgment_document(doc["fd"], case_id=doc["text_id"], source="synthetic", synthetic=True)
        assert case.province == truth.province
        expected = {d.name: d for d in truth.defendants}
        assert set(expected) == {d.name for d in case.defendants}
        for d in case.defendants:
            t = expected[d.name]
            total += 1
            assert d.sentence == t.sentence, (doc["text_id"], d.name)
            assert d.charge_names == t.charge_names
            wrong += (d.role != t.role) or (d.circumstance_codes != t.circumstance_codes)
    assert wrong <= 0.02 * total
