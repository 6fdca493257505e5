"""The sparse side (tokens v2, TF-IDF cosine) and the weighted fusion, against independent references."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from retrieval.fusion import RRF_K, fuse
from retrieval.index import IndexFormatError
from retrieval.search import RetrievalIndex
from retrieval.sparse import META_FILE, SparseIndex, group_key
from retrieval.text import TOKENIZER_VERSION, case_document, field_tokens, tokenize, tokenize_query
from sentencing.config import Settings
from tests.retrieval_cases import make_cases


def test_tokens_drop_dates_and_numbers_and_name_header_fields() -> None:
    doc = "罪名：容留他人吸毒、盗窃。情节：坦白。后果：轻伤二级。2016年7月3日下午，被告人在富顺县窃得3，000元"
    tokens = tokenize(doc)
    assert {"罪名:容留他人吸毒", "罪名:盗窃", "情节:坦白", "后果:轻伤二级"} <= set(tokens)
    assert not {"2016", "7", "3", "年", "月", "日", "000"} & set(tokens)
    assert {"富顺县", "盗窃", "下午"} <= set(tokens)
    assert field_tokens("被告人称：他没有。") == []  # a colon in free text is not a header field
    assert tokenize_query(doc) == tokens


def test_query_tokens_equal_document_tokens_on_real_documents() -> None:
    for case in make_cases(20, seed=3):
        for d in case.defendants:
            doc = case_document(case, d)
            assert tokenize_query(doc) == tokenize(doc)
            assert all(" " not in t for t in tokenize(doc))  # tokens.txt is space-separated


@pytest.fixture(scope="module")
def corpus_tokens() -> list[list[str]]:
    return [tokenize(case_document(c, d)) for c in make_cases(150, seed=5) for d in c.defendants]


def test_scores_are_tfidf_cosine_as_scikit_learn_computes_it(corpus_tokens: list[list[str]]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    index = SparseIndex.from_tokens(corpus_tokens)
    vectorizer = TfidfVectorizer(analyzer=lambda t: t, sublinear_tf=True)
    matrix = vectorizer.fit_transform(corpus_tokens)
    unnormalised = TfidfVectorizer(analyzer=lambda t: t, sublinear_tf=True, norm=None).fit(corpus_tokens)
    for query in [*corpus_tokens[:10], [*corpus_tokens[3][:7], "未登录词"]]:
        cosine = (matrix @ vectorizer.transform([query]).T).toarray().ravel()
        reference = cosine * np.linalg.norm(unnormalised.transform([query]).toarray())  # the query is not scaled
        assert np.allclose(index.scores(query), reference, rtol=1e-5, atol=1e-6)


def test_filtered_search_paths_agree_with_scores(corpus_tokens: list[list[str]]) -> None:
    index = SparseIndex.from_tokens(corpus_tokens)
    rng = np.random.default_rng(0)
    for i, share in enumerate((1.0, 0.5, 0.02, 0.0)):  # CSC postings for broad filters, CSR rows for narrow
        allowed = rng.random(len(index)) < share
        query = corpus_tokens[i]
        got_scores, got_rows = index.search(query, 20, allowed)
        full = np.where(allowed, index.scores(query), 0.0)
        expected = [r for r in np.lexsort((np.arange(len(full)), -full)) if full[r] > 0][:20]
        assert got_rows.tolist() == expected
        assert np.allclose(got_scores, full[expected], atol=1e-6)
    assert index.search(["未登录词"], 5, None)[1].size == 0


def test_save_load_and_refusal_of_other_formats(corpus_tokens: list[list[str]], tmp_path: Path) -> None:
    index = SparseIndex.from_tokens(corpus_tokens)
    index.save(tmp_path / "v2")
    loaded = SparseIndex.load(tmp_path / "v2")
    assert np.array_equal(loaded.scores(corpus_tokens[0]), index.scores(corpus_tokens[0]))
    assert loaded.extend(corpus_tokens[:2]).n_rows == len(corpus_tokens) + 2

    v1 = tmp_path / "v1"  # the BM25 bundle of version 1: tokens and bm25 matrices, no sparse.json
    v1.mkdir()
    (v1 / "tokens.txt").write_text("盗窃 手机\n诈骗\n", encoding="utf-8")
    (v1 / "bm25_vocab.json").write_text('{"盗窃": 0}', encoding="utf-8")
    with pytest.raises(IndexFormatError, match=r"BM25 format \(version 1\).*rebuild the index"):
        SparseIndex.load(v1)

    meta = json.loads((tmp_path / "v2" / META_FILE).read_text())
    meta["tokenizer_version"] = TOKENIZER_VERSION - 1
    (tmp_path / "v2" / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(IndexFormatError, match=rf"tokenizer version {TOKENIZER_VERSION - 1}.*rebuild"):
        SparseIndex.load(tmp_path / "v2")
    (tmp_path / "v2" / META_FILE).write_text("{broken")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        SparseIndex.load(tmp_path / "v2")



def test_postings_filed_by_group_give_the_same_scores_reading_one_group(
    corpus_tokens: list[list[str]], tmp_path: Path
) -> None:
    """Postings filed by group (the principal charge): a search told every allowed row is of one group
    reads that group's postings only, and answers bit for bit as the search over all of them does,
    by postings (broad filters) and by rows (narrow ones); saved, loaded and extended, they stay filed."""
    rng = np.random.default_rng(7)
    charges = ["盗窃", "诈骗", "故意伤害", None]
    row_charges = [charges[i] for i in rng.integers(0, len(charges), len(corpus_tokens))]
    groups = [group_key(c) for c in row_charges]
    plain = SparseIndex.from_tokens(corpus_tokens)
    filed = SparseIndex.from_tokens(corpus_tokens, groups)
    assert np.array_equal(filed.scores(corpus_tokens[1]), plain.scores(corpus_tokens[1]))
    for i, (charge, share) in enumerate([("盗窃", 1.0), ("诈骗", 0.6), ("故意伤害", 0.05), (None, 1.0)]):
        allowed = (np.array([c == charge for c in row_charges])) & (rng.random(len(corpus_tokens)) < share)
        query = corpus_tokens[i + 3]
        full = np.where(allowed, plain.scores(query), 0.0)
        expected = [r for r in np.lexsort((np.arange(len(full)), -full)) if full[r] > 0][:15]
        got_scores, got_rows = filed.search(query, 15, allowed, group_key(charge))
        assert got_rows.tolist() == expected
        assert np.allclose(got_scores, full[expected], atol=1e-6)  # the path by rows sums in another order
        words, weights = filed._query(query)
        read = filed._postings(words, group_key(charge))
        every = filed._postings(words, None)
        assert (read[1] - read[0]).sum() < (every[1] - every[0]).sum()
        by_group = filed._all_scores(words, weights, *read)
        assert np.array_equal(by_group[allowed], plain.scores(query)[allowed])  # bit for bit
    with pytest.raises(ValueError, match="3 groups for"):
        SparseIndex.from_tokens(corpus_tokens, groups[:3])

    filed.save(tmp_path / "filed")
    loaded = SparseIndex.load(tmp_path / "filed")
    assert np.array_equal(loaded.m["tfidf_row_groups"], np.asarray(groups))
    grown = loaded.extend(corpus_tokens[:2], groups[:2])
    assert len(grown.m["tfidf_row_groups"]) == len(corpus_tokens) + 2
    allowed = np.array([c == "盗窃" for c in row_charges] + [False, False])
    assert grown.search(corpus_tokens[0], 10, allowed, group_key("盗窃"))[1].tolist() \
        == plain.search(corpus_tokens[0], 10, allowed[: len(corpus_tokens)])[1].tolist()
    plain.save(tmp_path / "filed")  # the same folder, written without groups: the group files go
    assert "tfidf_csc_groups" not in SparseIndex.load(tmp_path / "filed").m
    filed.save(tmp_path / "half")
    (tmp_path / "half" / "tfidf_row_groups.npy").unlink()
    with pytest.raises(IndexFormatError, match="without the other group file"):
        SparseIndex.load(tmp_path / "half")

def _running_sum(rankings: list[list[int]], weights: list[float]) -> tuple[list[int], list[float]]:
    scores: Counter[int] = Counter()
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, row in enumerate(ranking):
            scores[row] += w / (RRF_K + rank + 1)
    ranked = sorted(scores, key=lambda r: (-scores[r], r))
    return ranked, [scores[r] for r in ranked]


def test_weighted_fusion_equals_a_running_sum() -> None:
    rng = np.random.default_rng(4)
    for dense_n, sparse_n in ((200, 200), (200, 0), (0, 50), (30, 7)):
        dense = rng.permutation(300)[:dense_n].astype(np.int64)
        sparse = rng.permutation(300)[:sparse_n].astype(np.int64)
        for dense_weight in (1.0, 0.5, 2.0):
            ranked, fused = fuse(dense, sparse, dense_weight=dense_weight)
            want_rows, want_scores = _running_sum([dense.tolist(), sparse.tolist()], [dense_weight, 1.0])
            assert ranked.tolist() == want_rows
            assert np.allclose(fused, want_scores, rtol=1e-12)


def test_a_zero_weight_ranking_only_fills_in() -> None:
    dense, sparse = np.array([5, 1, 9, 2]), np.array([9, 7, 5])
    ranked, fused = fuse(dense, sparse, dense_weight=0.0)
    assert ranked.tolist() == [9, 7, 5, 1, 2]  # the sparse order, then dense rows it lacks
    assert fused[3:].tolist() == [0.0, 0.0] and np.all(np.diff(fused) <= 0)
    assert fuse(dense, np.empty(0, np.int64), dense_weight=0.0)[0].tolist() == [5, 1, 9, 2]  # no sparse side
    alone, alone_scores = fuse(dense, np.empty(0, np.int64), dense_weight=0.0)
    assert alone is dense and alone_scores.tolist() == [1.0 / (RRF_K + r) for r in (1, 2, 3, 4)]  # as it is
    assert fuse(dense, sparse, sparse_weight=0.0)[0].tolist() == [5, 1, 9, 2, 7]
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="dense_weight"):
            fuse(dense, sparse, dense_weight=bad)
    with pytest.raises(ValueError, match="both 0"):
        fuse(dense, sparse, dense_weight=0.0, sparse_weight=0.0)


def test_a_build_told_it_is_too_large_skips_the_sparse_side(tmp_path: Path) -> None:
    """``expected_rows`` (the Dask shard builder knows it) spares the tokens of a side never built."""
    corpus = make_cases(40, seed=4)
    rows = sum(d.sentence is not None for c in corpus for d in c.defendants)
    settings = Settings(retrieval_epochs=0, retrieval_dim=16, retrieval_sparse_max_rows=rows)
    fits = RetrievalIndex.build(iter(corpus), tmp_path / "fits", settings=settings, expected_rows=rows)
    assert fits.sparse is not None and fits.manifest["sparse"] is True
    told = RetrievalIndex.build(iter(corpus), tmp_path / "told", encoder_dir=tmp_path / "fits" / "encoder",
                                settings=settings, expected_rows=rows + 1)
    assert told.sparse is None and told.manifest["sparse"] is False
    assert f"{rows + 1} rows expected" in told.manifest["sparse_note"]
    assert len(told) == len(fits) == rows  # the dense side is whole either way


def test_the_index_files_sparse_postings_by_principal_charge(tmp_path: Path) -> None:
    """A build files each row's postings under its principal charge, an add files the new rows'; the
    service's same-charge searches then read only that charge's postings and rank as over all."""
    corpus = make_cases(80, seed=9)
    settings = Settings(retrieval_epochs=0, retrieval_dim=16)
    index = RetrievalIndex.build(iter(corpus[:60]), tmp_path / "idx", settings=settings)
    index.add(corpus[60:])
    index.save()
    index = RetrievalIndex.load(tmp_path / "idx", settings=settings)
    names = [index.vocab["charges"].name(int(c)) for c in np.asarray(index.meta["charge"])]
    assert index.sparse.m["tfidf_row_groups"].tolist() == [group_key(n) for n in names]
    queries = [c for c in corpus if c.province][:12]
    filed = [[h.case_id for h in index.search(q, q.defendants[0], k=8, mode="sparse")] for q in queries]
    index.sparse = SparseIndex.from_tokens(index.sparse.tokens)  # the same rows, not filed by group
    assert [[h.case_id for h in index.search(q, q.defendants[0], k=8, mode="sparse")] for q in queries] == filed
    assert all(filed)
