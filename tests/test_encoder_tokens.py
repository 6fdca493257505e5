"""The static encoder's batch path: clause by clause, the same token ids and vectors as text by text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.encoder import _CLAUSE_PIECE, _QUERY_PIECE, StaticEncoder
from retrieval.search import RetrievalIndex
from retrieval.text import case_document
from sentencing.case import Case
from sentencing.config import Settings
from tests.retrieval_cases import make_cases

SETTINGS = Settings(retrieval_epochs=1, retrieval_dim=32)

# Text built from what judgments hold, and from what could break a split at clause marks: every
# clause mark in both widths, other punctuation, digits in both widths, blanks, Latin letters, a
# combining accent, and characters NFKC rewrites (full-width letters, ㎏, ①, ²) or that count as
# numerals (〇).
_ALPHABET = (
    "被告人张某盗窃罪判处有期徒刑年月日元克。，,；;：:、！？!?（）()“”.-%０１２３0123 \n\tABCabcＡｂ\u0301㎏①²〇"
)


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return make_cases(120, seed=5)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory, corpus: list[Case]) -> StaticEncoder:
    out: Path = tmp_path_factory.mktemp("encoder") / "index"
    RetrievalIndex.build(iter(corpus), out, settings=SETTINGS)
    return StaticEncoder(out / "encoder")


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=_ALPHABET, max_size=80))
def test_clause_ids_are_the_ids_of_the_whole_text(encoder: StaticEncoder, text: str) -> None:
    def ids(piece: str) -> list[int]:
        return encoder.tokenizer.encode(piece, add_special_tokens=False).ids

    whole = ids(text)
    by_clause = [i for piece in _CLAUSE_PIECE.findall(text) for i in ids(piece)]
    assert by_clause == whole
    assert "".join(_CLAUSE_PIECE.findall(text)) == text


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=_ALPHABET, max_size=80))
def test_query_ids_are_the_ids_of_the_whole_text(encoder: StaticEncoder, text: str) -> None:
    """A query is cut finer than a batch (between digits and ideographs, after 、), through the cache."""
    assert encoder._query_ids(text) == encoder.tokenizer.encode(text, add_special_tokens=False).ids
    assert "".join(_QUERY_PIECE.split(text)) == text


def test_query_pieces_cut_numbers_and_listed_names_from_their_clause() -> None:
    pieces = [p for p in _QUERY_PIECE.split("被告人周明伙同刘芳、徐涛，涉案金额人民币21700元。２０元") if p]
    assert pieces == ["被告人周明伙同刘芳、", "徐涛，", "涉案金额人民币", "21700", "元。", "２０元"]


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.text(alphabet=_ALPHABET, max_size=60), min_size=2, max_size=6))
def test_batch_ids_are_each_documents_ids(encoder: StaticEncoder, texts: list[str]) -> None:
    ids, lengths = encoder._batch_ids(texts)
    expected = [encoder.tokenizer.encode(t, add_special_tokens=False).ids for t in texts]
    assert lengths.tolist() == [len(e) for e in expected]
    assert ids.tolist() == [i for e in expected for i in e]


def test_batch_vectors_equal_one_by_one(encoder: StaticEncoder, corpus: list[Case]) -> None:
    docs = [case_document(c, d) for c in corpus[:40] for d in c.defendants] + ["", "。", "未登录的词语ABC 123"]
    batch = encoder.encode(docs)
    alone = np.vstack([encoder.encode([d]) for d in docs])
    assert np.abs(batch - alone).max() < 1e-6


def test_a_query_is_the_float64_mean_of_its_token_rows_without_a_float64_table(
    corpus: list[Case], encoder: StaticEncoder
) -> None:
    fresh = StaticEncoder(encoder.model_dir)  # nothing encoded yet
    table = fresh.weights.astype(np.float64)
    docs = [case_document(c, d) * repeat for c in corpus[:30] for d in c.defendants for repeat in (1, 4)]
    for doc in docs:
        ids = np.array(fresh._query_ids(doc), dtype=np.int64)
        expected = np.asarray((table[ids].sum(axis=0) / max(len(ids), 1)).reshape(1, -1), dtype=np.float32)
        if fresh.normalize:
            expected /= np.maximum(np.linalg.norm(expected, axis=1, keepdims=True), 1e-12)
        np.testing.assert_array_equal(fresh.encode([doc]), expected)
    assert fresh._weights64 is None  # a server encodes single queries: it holds no float64 copy of the table
    fresh.encode(docs[:3])
    assert fresh._weights64 is not None
