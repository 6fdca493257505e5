"""FAISS side of retrieval: factory choice, filtered search, deletion, save and memory-mapped load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.index import IndexFormatError, Metadata, SearchKnobs, VectorIndex, Vocab, default_factory
from retrieval.pairs import PairItem, weak_pairs
from sentencing.sentence import SentenceForm


def _vectors(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _exact_top(x: np.ndarray, q: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    scores = np.where(allowed, x @ q, -np.inf)
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k] if allowed[i]]


def test_default_factory_by_size() -> None:
    assert default_factory(10_000, exact_max=50_000, large="IVF1024,SQ8") == "IDMap2,Flat"
    assert default_factory(60_000, exact_max=50_000, large="IVF1024,SQ8") == "IVF1024,SQ8"
    with pytest.raises(ValueError, match="factory"):
        VectorIndex.create(32, "NoSuchIndex")


@pytest.mark.parametrize("factory", ["Flat", "HNSW32,Flat", "IVF8,Flat", "IVF8,SQ8"])
def test_filtered_search_matches_numpy(factory: str) -> None:
    x = _vectors(2000)
    index = VectorIndex.create(32, factory)
    index.train(x)
    index.add(x, np.arange(2000))
    rng = np.random.default_rng(1)
    knobs = SearchKnobs(ef_search=200, nprobe=8, exact_subset_max=100)
    for sel in (0.5, 0.03):  # broad filter (selector search) and narrow one (exact scan of the subset)
        allowed = rng.random(2000) < sel
        hits = 0
        for q in x[:20]:
            _s, ids = index.search(q, 10, allowed, knobs)
            assert all(allowed[i] for i in ids)
            hits += len(set(ids.tolist()) & set(_exact_top(x, q, allowed, 10)))
        assert hits / 200 >= (1.0 if factory == "Flat" else 0.9)


@pytest.mark.parametrize("factory", ["IVF8,Flat", "IDMap2,IVF8,SQ8", "Flat"])
def test_removal_keeps_every_other_row_findable(factory: str) -> None:
    """Removing rows must not shift the ids of the others (an IVF inside an IDMap did)."""
    x = _vectors(700)
    index = VectorIndex.create(32, factory)
    assert "IDMap" not in index.factory or "IVF" not in index.factory  # an IVF is kept bare
    index.train(x)
    index.add(x, np.arange(700))
    assert index.remove(np.array([3, 4, 300])) == 3
    knobs = SearchKnobs(nprobe=8)
    for row in (0, 5, 299, 301, 600, 699):
        _s, ids = index.search(x[row], 1, None, knobs)
        assert ids.tolist() == [row]
    allowed = np.ones(700, dtype=bool)
    allowed[600] = False
    _s, ids = index.search(x[600], 5, allowed, knobs)
    assert 600 not in ids.tolist() and 3 not in ids.tolist()


def test_delete_save_and_mmap_load(tmp_path: Path) -> None:
    x = _vectors(500)
    flat = VectorIndex.create(32, "IDMap2,Flat")
    flat.add(x, np.arange(500))
    assert flat.remove(np.array([0, 1, 2])) == 3 and flat.ntotal == 497
    hnsw = VectorIndex.create(32, "HNSW16,Flat")
    hnsw.add(x, np.arange(500))
    assert hnsw.remove(np.array([0])) == 0  # HNSW cannot: the metadata tombstone hides the row
    flat.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", flat.factory, mmap=True)
    assert loaded.mmapped and loaded.ntotal == 497
    _s, ids = loaded.search(x[5], 1, None, SearchKnobs())
    assert ids.tolist() == [5]
    loaded.add(x[:1], np.array([500]))  # a mapped index is re-read writable before it changes
    assert loaded.ntotal == 498 and not loaded.mmapped
    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(IndexFormatError, match="unreadable"):
        VectorIndex.load(tmp_path / "bad.faiss", "Flat")


def test_metadata_roundtrip_and_vocab(tmp_path: Path) -> None:
    meta = Metadata()
    vocab = Vocab()
    batch = {
        "charge": [vocab.add("盗窃"), vocab.add("诈骗")], "family": [0, 0], "province": [0, -1], "tier": [0, 1],
        "court": [0, 1], "date": [100, 200], "term": [8, -1], "form": [2, 3], "circumstances": [1, 0],
        "role": [4, 4], "amount": [5000.0, np.nan], "synthetic": [True, False], "deleted": [False, False],
    }
    meta.append(batch)
    meta.save(tmp_path / "meta")
    loaded = Metadata.load(tmp_path / "meta")
    assert len(loaded) == 2 and loaded["term"].tolist() == [8, -1]
    assert vocab.get("盗窃") == 0 and vocab.get("抢劫") == -2 and vocab.get(None) == -1
    with pytest.raises(ValueError, match="lacks columns"):
        meta.append({"charge": [1]})
    np.save(tmp_path / "meta" / "term.npy", np.zeros(3, dtype=np.int16))
    with pytest.raises(IndexFormatError, match="differ in length"):
        Metadata.load(tmp_path / "meta")


def test_weak_pairs_follow_charge_tier_and_sentence() -> None:
    items = [
        PairItem("a", "盗窃", "数额较大", 0b1, 8, SentenceForm.CUSTODY),
        PairItem("b", "盗窃", "数额较大", 0b1, 9, SentenceForm.CUSTODY),
        PairItem("c", "盗窃", "数额较大", 0b1, 40, SentenceForm.CUSTODY),  # sentence too far
        PairItem("d", "诈骗", "数额较大", 0b1, 8, SentenceForm.CUSTODY),  # other charge
        PairItem("e", "盗窃", "数额巨大", 0b1, 8, SentenceForm.CUSTODY),  # other tier
        PairItem("f", "盗窃", "数额较大", 0b1, 8, SentenceForm.PROBATION),  # custody differs
    ]
    pairs = set(weak_pairs(items, seed=3))
    assert pairs == {("a", "b"), ("b", "a")}
