"""Search results stay the same across speed work: ids recorded with the pre-optimisation code.

``tests/data/retrieval_golden.json`` holds, for a seeded demo corpus (synthetic cases only), the
ordered (case id, masked defendant, sentence text) of every hit of a few queries in each mode,
and their cohort statistics.
Regenerate only when the ranking algorithm changes on purpose:
``LIANGXING_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_retrieval_golden.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from retrieval.search import RetrievalIndex
from sentencing.case import Case
from sentencing.config import Settings
from sentencing.demo_corpus import generate_cases

GOLDEN = Path(__file__).parent / "data" / "retrieval_golden.json"
SEED = 20261127
N_INDEXED = 400
N_QUERIES = 12
SETTINGS = Settings(retrieval_epochs=0, retrieval_dim=64)


def _results(index: RetrievalIndex, queries: list[Case]) -> dict[str, list[list[list[str]]]]:
    out: dict[str, list[list[list[str]]]] = {}
    for mode in ("hybrid", "dense", "sparse"):
        for scope in ("other", "any"):
            out[f"{mode}/{scope}"] = [
                [[h.case_id, h.defendant, h.sentence_text] for h in index.search(q, d, k=10, mode=mode,
                                                                                   province_scope=scope)]
                for q in queries
                for d in q.defendants[:2]
            ]
    for scope in ("any", "other"):
        out[f"cohort/{scope}"] = [
            index.cohort(q, d, province_scope=scope).model_dump(mode="json") for q in queries for d in q.defendants[:2]
        ]
    return out


def build_golden_index(directory: Path) -> tuple[RetrievalIndex, list[Case]]:
    cases = list(generate_cases(N_INDEXED + N_QUERIES, SEED))
    assert all(c.synthetic for c in cases)
    index = RetrievalIndex.build(iter(cases[:N_INDEXED]), directory, settings=SETTINGS)
    return index, [c for c in cases[N_INDEXED:] if c.province]


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RetrievalIndex, list[Case]]:
    return build_golden_index(tmp_path_factory.mktemp("golden") / "index")


def test_search_results_match_recorded(golden_run: tuple[RetrievalIndex, list[Case]]) -> None:
    index, queries = golden_run
    got = _results(index, queries)
    if os.environ.get("LIANGXING_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sum(len(hits) for runs in expected.values() for hits in runs) > 100
    assert got == expected


def test_reloaded_index_gives_same_results(golden_run: tuple[RetrievalIndex, list[Case]]) -> None:
    index, queries = golden_run
    reloaded = RetrievalIndex.load(index.directory, settings=SETTINGS)
    assert _results(reloaded, queries[:3]) == _results(index, queries[:3])
