"""The judgment parser against the hand-checked sample of real judgments (tests/data/judge_handcheck.jsonl).

Each record was read by hand from ../shared/data/judge/judgments.jsonl: the imposed sentence, the
convicted charges, the role and the key statutory circumstances the court found (自首, 坦白, 累犯,
未遂, 中止, 立功). All multi-defendant cases are in it, and single-defendant cases with several
crimes, appeals, retrials, exemptions and 管制. The file holds expected values only, no judgment text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentencing.case import Case, Defendant
from sentencing.parsing import parse_judgment_document
from sentencing.sentence import parse_sentence

HANDCHECK = Path(__file__).parent / "data" / "judge_handcheck.jsonl"
KEY_CIRCUMSTANCES = {"surrender", "confession", "recidivist", "attempt", "discontinuation", "meritorious",
                     "major_meritorious"}


def load_handcheck() -> list[dict]:
    return [json.loads(line) for line in HANDCHECK.read_text(encoding="utf-8").splitlines() if line.strip()]


def compare(record: dict, defendant: Defendant | None) -> list[str]:
    """The fields where the parsed defendant differs from the hand-checked record."""
    if defendant is None:
        return ["defendant missing"]
    wrong = []
    if defendant.sentence != parse_sentence(record["sentence"]):
        wrong.append(f"sentence {defendant.sentence and defendant.sentence.to_text()!r} != {record['sentence']!r}")
    convicted = [c.charge for c in defendant.charge_sentences] or defendant.charge_names
    if convicted != record["charges"]:
        wrong.append(f"charges {convicted} != {record['charges']}")
    if defendant.role.value != record["role"]:
        wrong.append(f"role {defendant.role.value} != {record['role']}")
    if record["key_circumstances"] is not None:
        found = sorted(c.code.value for c in defendant.circumstances if c.code.value in KEY_CIRCUMSTANCES)
        if found != record["key_circumstances"]:
            wrong.append(f"circumstances {found} != {record['key_circumstances']}")
    return wrong


@pytest.fixture(scope="module")
def parsed(shared_data: Path) -> dict[str, Case]:
    wanted = {r["case_id"] for r in load_handcheck()}
    cases = {}
    with open(shared_data / "judge" / "judgments.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            case_id = f"judge:{row['text_id']}"
            if case_id in wanted:
                cases[case_id] = parse_judgment_document(row["fd"], case_id=case_id)
    return cases


def test_handcheck_sample_is_large_enough() -> None:
    records = load_handcheck()
    assert len(records) >= 40
    assert len({(r["case_id"], r["defendant"]) for r in records}) == len(records)


@pytest.mark.real_data
def test_parser_reproduces_hand_checked_values(parsed: dict[str, Case]) -> None:
    errors = []
    for record in load_handcheck():
        case = parsed[record["case_id"]]
        defendant = next((d for d in case.defendants if d.name == record["defendant"]), None)
        if wrong := compare(record, defendant):
            errors.append(f"{record['case_id']} {record['defendant']}: {'; '.join(wrong)}")
    # Sentences and charges must all match; circumstance/role reading is allowed a small error rate.
    hard = [e for e in errors if "sentence" in e or "charges" in e or "missing" in e]
    assert not hard, "\n".join(hard)
    assert len(errors) <= 0.1 * len(load_handcheck()), "\n".join(errors)
