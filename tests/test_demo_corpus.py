"""The synthetic demo corpus: deterministic, labelled, plausible, and read back exactly by the parser."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sentencing.case import Case, CircumstanceCode, Role
from sentencing.charges import default_catalogue
from sentencing.cli import main
from sentencing.demo_corpus import (
    SYNTHETIC_MARKER,
    DemoCorpusError,
    generate_cases,
    generate_documents,
    generate_pairs,
    write_corpus,
)
from sentencing.demo_corpus.generate import _generate, document_of
from sentencing.demo_corpus.outcome import Guideline
from sentencing.demo_corpus.world import CHARGES_PATH, DemoDataError, _load_charges, default_world
from sentencing.guideline import calculate
from sentencing.regions import MAINLAND_PROVINCES
from sentencing.sentence import SentenceForm, SentenceKind, format_sentence

C = CircumstanceCode
SAMPLE = 2000


@pytest.fixture(scope="module")
def sample() -> list[tuple[dict, Case]]:
    return list(generate_pairs(SAMPLE, 20261127))


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert write_corpus(a, 120, 7) == 120
    assert write_corpus(b, 120, 7) == 120
    write_corpus(c, 120, 8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert len(a.read_text(encoding="utf-8").splitlines()) == 120


def test_parallel_workers_write_the_same_bytes(tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    write_corpus(one, 50, 12)
    assert write_corpus(two, 50, 12, workers=2) == 50
    assert one.read_bytes() == two.read_bytes()
    with pytest.raises(DemoCorpusError, match="workers"):
        write_corpus(two, 5, 1, workers=0)


def test_a_prefix_is_the_smaller_corpus_and_shards_join_up() -> None:
    whole = list(generate_documents(40, 3))
    assert list(generate_documents(25, 3)) == whole[:25]
    assert list(generate_documents(15, 3, start=25)) == whole[25:]


def test_output_depends_on_nothing_but_the_seed(tmp_path: Path) -> None:
    """Not on hash randomisation (separate interpreters) nor on what the guideline memo holds."""
    code = (
        "import hashlib, json; from sentencing.demo_corpus import generate_documents; h = hashlib.sha256(); "
        "[h.update(json.dumps(d, ensure_ascii=False).encode()) for d in generate_documents(40, 9)]; "
        "print(h.hexdigest())"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(run.stdout.strip())
    assert len(digests) == 1
    warm = Guideline(default_catalogue())
    list(_generate(80, 10, guideline=warm))  # another seed's defendants fill the memo
    fresh = [document_of(9, d, r) for d, r in _generate(40, 9)]
    memo = [document_of(9, d, r) for d, r in _generate(40, 9, guideline=warm)]
    assert fresh == memo and warm.hits > 0


def test_documents_and_cases_describe_the_same_judgments() -> None:
    docs = list(generate_documents(30, 5))
    cases = list(generate_cases(30, 5))
    for doc, case in zip(docs, cases, strict=True):
        assert case.id == f"synthetic:{doc['text_id']}"  # as the judge importer names it
        assert case.province == doc["province"]
        assert case.case_number and case.case_number in doc["fd"]
        for d in case.defendants:
            assert f"被告人{d.name}" in doc["fd"]


@pytest.mark.parametrize(
    "bad", [{"n": -1, "seed": 1}, {"n": 5, "seed": -3}, {"n": 2.5, "seed": 1}, {"n": 3, "seed": True}]
)
def test_bad_arguments_name_the_argument(bad: dict) -> None:
    with pytest.raises(DemoCorpusError) as err:
        list(generate_documents(**bad))
    assert ("n " if "n must" in str(err.value) else "seed ") in str(err.value)


# --------------------------------------------------------------------------- labelling and format


def test_every_record_is_labelled_synthetic_in_the_judge_format(sample: list[tuple[dict, Case]]) -> None:
    codes = {p.code for p in MAINLAND_PROVINCES}
    ids = set()
    for doc, case in sample:
        assert list(doc) == ["text_id", "text", "la", "fd", "synthetic", "province"]
        assert doc["synthetic"] is True and case.synthetic and case.source == "synthetic"
        assert doc["fd"].startswith(SYNTHETIC_MARKER)
        assert doc["text"] and doc["text"] in doc["fd"]
        assert doc["la"] and all(isinstance(a, int) for a in doc["la"])
        assert doc["province"] in codes
        assert case.court and case.case_number
        assert 0 < doc["fd"].find(case.court.name) < doc["fd"].find(case.case_number) < 120
        # Pseudonymised people only: every defendant is 某.
        assert all("某" in d.name for d in case.defendants)
        ids.add(doc["text_id"])
    assert len(ids) == len(sample)


def test_model_inputs_hold_no_outcome(sample: list[tuple[dict, Case]]) -> None:
    for doc, case in sample:
        assert "建议判处" not in case.facts
        assert "缓刑" not in case.reasoning and "决定执行" not in case.reasoning
        for d in case.defendants:
            assert d.sentence is not None
            assert format_sentence(d.sentence) not in case.reasoning
            line = [format_sentence(d.sentence), format_sentence(d.sentence, arabic=True)]
            assert any(s in doc["fd"] for s in line), (doc["text_id"], d.name, line)
    # The prosecutor's recommendation does appear in some raw documents, as in real ones.
    assert any("建议判处" in doc["text"] for doc, _ in sample)


# --------------------------------------------------------------------------- plausibility


def test_all_charges_and_provinces_occur(sample: list[tuple[dict, Case]]) -> None:
    charges = Counter(c.name for _, case in sample for d in case.defendants for c in d.charges)
    staged = {c.name for c in default_world().charges}
    assert set(charges) == staged
    provinces = Counter(case.province for _, case in sample)
    assert len(provinces) == 31
    assert min(provinces.values()) >= 0.01 * SAMPLE


def test_shares_look_like_a_basic_court_docket(sample: list[tuple[dict, Case]]) -> None:
    cases = [case for _, case in sample]
    defendants = [d for c in cases for d in c.defendants]
    multi = sum(len(c.defendants) > 1 for c in cases) / len(cases)
    assert 0.10 <= multi <= 0.30
    assert max(len(c.defendants) for c in cases) == 5
    forms = Counter(d.sentence.form for d in defendants)
    assert 0.25 <= forms[SentenceForm.PROBATION] / len(defendants) <= 0.55
    kinds = Counter(d.sentence.kind for d in defendants)
    assert kinds[SentenceKind.DETENTION] > 0.1 * len(defendants)
    assert kinds[SentenceKind.FIXED_TERM] > 0.4 * len(defendants)
    several = [d for d in defendants if d.charge_sentences]
    assert len(several) >= 0.005 * len(defendants)
    roles = Counter(d.role for d in defendants)
    assert roles[Role.ACCESSORY] > 0 and roles[Role.PRINCIPAL] > 0
    codes = Counter(c.code for d in defendants for c in d.circumstances)
    for code in (C.SURRENDER, C.CONFESSION, C.PLEA_AGREEMENT, C.RECIDIVIST, C.PRIOR_RECORD, C.RESTITUTION,
                 C.COMPENSATION, C.FORGIVENESS, C.ATTEMPT, C.JUVENILE, C.MERITORIOUS):
        assert codes[code] > 0, code


def test_sentences_obey_the_criminal_law(sample: list[tuple[dict, Case]]) -> None:
    for _, case in sample:
        for d in case.defendants:
            s = d.sentence
            if s.probation_months:
                assert not d.has(C.RECIDIVIST)
                floor = 2 if s.kind is SentenceKind.DETENTION else 12
                assert s.probation_months >= max(floor, s.months or 0)
            if s.kind is SentenceKind.DETENTION:
                assert 1 <= (s.months or 0) <= (12 if d.charge_sentences else 6)
            if s.kind is SentenceKind.FIXED_TERM and not d.charge_sentences:
                assert 6 <= (s.months or 0) <= 180
            if d.charge_sentences:
                terms = [cs.sentence.months or 0 for cs in d.charge_sentences if cs.sentence.kind is s.kind]
                if s.kind.has_term and terms:
                    assert max(terms) <= (s.months or 0) <= sum(terms)
            assert d.has(C.JUVENILE) == (d.age is not None and d.age < 18)
            assert d.has(C.ELDERLY) == (d.age is not None and d.age >= 75)
            if d.has(C.RECIDIVIST):
                assert d.has(C.PRIOR_RECORD)


def test_sentences_follow_the_guideline_and_the_provinces_leniency(sample: list[tuple[dict, Case]]) -> None:
    """Generated terms sit around the guideline's point, lower where the (synthetic) province is lenient."""
    leniency = {p.province.code: p.leniency for p in default_world().provinces}
    ratios: dict[str, list[float]] = {"lenient": [], "strict": []}
    all_ratios: list[float] = []
    for _, case in sample[:800]:
        for d in case.defendants:
            s = d.sentence
            if d.charge_sentences or s.kind is not SentenceKind.FIXED_TERM:
                continue
            g = calculate(d, case)
            if not g.point_months or g.point_months < 6:
                continue
            r = math.log(s.months / g.point_months)
            all_ratios.append(r)
            if leniency[case.province] <= 0.97:
                ratios["lenient"].append(r)
            elif leniency[case.province] >= 1.03:
                ratios["strict"].append(r)
    assert abs(statistics.median(all_ratios)) < 0.15
    assert statistics.mean(ratios["lenient"]) < statistics.mean(ratios["strict"])


# --------------------------------------------------------------------------- the parser reads it back


def test_the_parser_reads_back_sentences_charges_roles_and_circumstances(sample: list[tuple[dict, Case]]) -> None:
    parsing = pytest.importorskip("sentencing.parsing")
    n = 0
    same = Counter()
    for doc, truth in sample:
        parsed = parsing.parse_judgment_document(doc["fd"], case_id=doc["text_id"], source="synthetic", synthetic=True)
        assert parsed.province == truth.province
        by_name = {d.name: d for d in parsed.defendants}
        for d in truth.defendants:
            n += 1
            p = by_name.get(d.name)
            if p is None:
                continue
            same["sentence"] += p.sentence == d.sentence
            same["charges"] += p.charge_names == d.charge_names
            same["role"] += p.role is d.role
            same["circumstances"] += p.circumstance_codes == d.circumstance_codes
            if d.charge_sentences:
                same["several"] += [c.sentence for c in p.charge_sentences] == [c.sentence for c in d.charge_sentences]
                same["several_n"] += 1
    assert same["sentence"] / n >= 0.999, same
    assert same["charges"] / n >= 0.99, same
    assert same["role"] / n >= 0.99, same
    assert same["circumstances"] / n >= 0.97, same
    assert same["several"] == same["several_n"]


def test_the_judge_importer_reads_the_corpus(tmp_path: Path) -> None:
    importers = pytest.importorskip("sentencing.importers")
    path = tmp_path / "demo.jsonl"
    write_corpus(path, 25, 11)
    errors: list = []
    cases = list(importers.iter_judge(path, errors))
    assert not errors
    truth = list(generate_cases(25, 11))
    assert [len(c.defendants) for c in cases] == [len(t.defendants) for t in truth]
    assert all(c.synthetic and c.source == "synthetic" for c in cases)


# --------------------------------------------------------------------------- the command and its failures


def test_the_command_writes_the_corpus(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    assert main(["demo-corpus", "--cases", "12", "--seed", "4", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["text_id"] for x in lines] == [f"demo-4-{i:07d}" for i in range(12)]


def test_a_failed_run_keeps_the_corpus_already_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.jsonl"
    write_corpus(out, 5, 1)
    before = out.read_bytes()
    assert main(["demo-corpus", "--cases", "-4", "--out", str(out)]) == 2
    assert "--cases" in capsys.readouterr().err
    assert main(["demo-corpus", "--cases", "3", "--out", str(tmp_path / "missing" / "x.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(DemoCorpusError, match="directory"):
        write_corpus(tmp_path, 3, 1)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.jsonl"]


def test_malformed_demo_data_names_the_entry_and_field(tmp_path: Path) -> None:
    text = CHARGES_PATH.read_text(encoding="utf-8").replace('quantity = "amount"', 'quantity = "weight"', 1)
    bad = tmp_path / "charges.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(DemoDataError, match=r"盗窃.*quantity 'weight'"):
        _load_charges(bad)
    bad.write_text("[[charge]]\nname = \"盗窃\"\n", encoding="utf-8")
    with pytest.raises(DemoDataError, match="missing field 'quantity'"):
        _load_charges(bad)
