"""Similar cases are built without validating twice (retrieval.search._hits, serve.recommender.similar_case_out):
each hit must equal, field for field and byte for byte, what the validating constructors build."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from retrieval.search import RetrievalIndex, SimilarCase, _sentence
from sentencing.case import Case
from sentencing.config import Settings
from sentencing.sentence import Sentence
from serve.masking import mask_name
from serve.recommender import similar_case_out
from serve.schemas import SimilarCaseOut
from tests.retrieval_cases import make_cases

SETTINGS = Settings(retrieval_epochs=1, retrieval_dim=32)


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return make_cases(240, seed=23)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, corpus: list[Case]) -> RetrievalIndex:
    out = tmp_path_factory.mktemp("similar-fast") / "index"
    return RetrievalIndex.build(iter(corpus), out, settings=SETTINGS)


def _hits(index: RetrievalIndex, corpus: list[Case]) -> list[SimilarCase]:
    hits: list[SimilarCase] = []
    for case in corpus[:12]:
        query = case.before_judgment()
        for mode in ("hybrid", "dense", "sparse"):
            hits += index.search(query, query.defendants[0], k=8, province_scope="any", mode=mode)
    assert len(hits) > 100
    return hits


def test_hits_equal_the_validated_model(index: RetrievalIndex, corpus: list[Case]) -> None:
    for hit in _hits(index, corpus):
        validated = SimilarCase.model_validate(hit.model_dump())
        assert hit == validated
        assert hit.model_dump_json() == validated.model_dump_json()
        assert hit.model_fields_set == validated.model_fields_set
        assert isinstance(hit.sentence, Sentence) and type(hit.score) is float
        assert hit.date is None or type(hit.date) is dt.date
        assert all(type(r) is int for r in (hit.dense_rank, hit.sparse_rank) if r is not None)


def test_similar_case_out_equals_the_validating_constructor(index: RetrievalIndex, corpus: list[Case]) -> None:
    for hit in _hits(index, corpus):
        expected = SimilarCaseOut(
            case_id=hit.case_id, court=hit.court, province=hit.province, province_name=hit.province_name,
            date=hit.date, charges=list(hit.charges), defendant=mask_name(hit.defendant), sentence=hit.sentence,
            sentence_text=hit.sentence_text or None, score=round(float(hit.score), 4), matched=list(hit.matched),
            tier=hit.tier, role=hit.role, circumstances=list(hit.circumstances), synthetic=hit.synthetic,
        )
        out = similar_case_out(hit)
        assert out == expected
        assert out.model_dump_json() == expected.model_dump_json()
        assert out.model_fields_set == expected.model_fields_set


def test_stored_sentences_are_validated_once_each_and_bad_ones_refused() -> None:
    stored = {"kind": "fixed_term", "months": 14, "fine_yuan": 3000}
    first, again = _sentence(dict(stored)), _sentence(dict(stored))
    assert first is again and first == Sentence(kind="fixed_term", months=14, fine_yuan=3000)
    with pytest.raises(ValidationError, match="has no months"):
        _sentence({"kind": "death", "months": 12})
    with pytest.raises(ValidationError, match="months"):
        _sentence({"kind": "fixed_term", "months": [12]})  # unhashable: validated (and refused) as given
    with pytest.raises(ValidationError, match="extra"):
        _sentence({"kind": "fixed_term", "months": 12, "parole": True})
