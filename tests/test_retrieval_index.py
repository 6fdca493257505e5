"""FAISS side of retrieval: factory choice, filtered search, deletion, save and memory-mapped load;
the charge-grouped columns and the cohort statistics and rank fusion computed from them."""

from __future__ import annotations

import errno
import os
import threading
from collections import Counter
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import index as index_module
from retrieval.cohort import (
    HISTOGRAM_EDGES_MONTHS,
    KEY_MASK,
    NON_CUSTODIAL_LUT,
    CohortQuery,
    _histogram,
    _median,
    _percentiles,
    cohort_stats,
)
from retrieval.fusion import RRF_K, fuse
from retrieval.index import (
    ChargeOrder,
    IndexFormatError,
    Metadata,
    SearchKnobs,
    VectorIndex,
    Vocab,
    default_factory,
    set_search_threads,
)
from retrieval.pairs import PairItem, weak_pairs
from retrieval.profile import DefendantProfile, circumstance_mask
from sentencing.case import CircumstanceCode, Role
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


@pytest.mark.parametrize("factory", ["Flat", "HNSW32,Flat", "IVF8,Flat", "IVF8,SQ8", "IVF8,PQ16x4fsr,Refine(SQfp16)"])
def test_filtered_search_matches_numpy(factory: str) -> None:
    x = _vectors(2000)
    index = VectorIndex.create(32, factory)
    index.train(x)
    index.add(x, np.arange(2000))
    rng = np.random.default_rng(1)
    knobs = SearchKnobs(ef_search=200, nprobe=8, exact_subset_max=100, refine_k_factor=8)
    for sel in (0.5, 0.03):  # broad filter (selector search) and narrow one (exact scan of the subset)
        allowed = rng.random(2000) < sel
        hits = 0
        for q in x[:20]:
            _s, ids = index.search(q, 10, allowed, knobs)
            assert all(allowed[i] for i in ids)
            hits += len(set(ids.tolist()) & set(_exact_top(x, q, allowed, 10)))
        assert hits / 200 >= (1.0 if factory == "Flat" else 0.9)


def test_search_threads_hold_in_every_thread_that_searches() -> None:
    """OpenMP keeps its thread count per thread: the server's request threads searched on every
    core (the OpenMP default), spinning between searches, though the service set one thread."""
    x = _vectors(400)
    flat = VectorIndex.create(32, "IDMap2,Flat")
    flat.add(x, np.arange(400))
    before = (index_module._search_threads, faiss.omp_get_max_threads())
    seen: list[int] = []

    def request() -> None:
        flat.search_batch(x[:3], 5, np.ones(400, dtype=bool), SearchKnobs())
        seen.append(faiss.omp_get_max_threads())

    try:
        set_search_threads(1)
        worker = threading.Thread(target=request)
        worker.start()
        worker.join()
        assert seen == [1]
    finally:
        index_module._search_threads = before[0]
        faiss.omp_set_num_threads(before[1])


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


def test_refined_ivf_is_bare_positional_and_survives_mmap_load(tmp_path: Path) -> None:
    """Fast-scan PQ candidates rescored by 8-bit codes: rows by position, deletions tombstoned."""
    x = _vectors(900)
    index = VectorIndex.create(32, "IVF8,PQ16x4fsr,Refine(SQ8)")
    assert index.factory == "IVF8,PQ16x4fsr,Refine(SQ8)" and index.refine is not None and not index.exact
    index.train(x)
    index.add(x[:600], np.arange(600))
    with pytest.raises(ValueError, match="in order, from 600"):
        index.add(x[600:700], np.arange(601, 701))
    assert index.remove(np.array([3])) == 0  # no remove_ids: the metadata tombstone hides the row
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", index.factory, mmap=True)
    assert loaded.refine is not None and loaded.ntotal == 600
    loaded.add(x[600:], np.arange(600, 900))  # re-read writable, then appended in order
    knobs = SearchKnobs(nprobe=8, refine_k_factor=4)
    allowed = np.arange(900) % 3 != 0
    for row in (1, 299, 650, 898):
        _s, ids = loaded.search(x[row], 5, allowed, knobs)
        assert ids[0] == row and all(allowed[i] for i in ids)
    _s, ids = loaded.search(x[3], 1, None, knobs)
    assert ids.tolist() == [3]



@pytest.mark.parametrize("refine", ["SQfp16", "SQ8"])
def test_refine_reads_rescore_as_faiss_does_through_the_map(tmp_path: Path, refine: str) -> None:
    """``refine_reads="read"``: candidates rescored from codes read with pread give FAISS's own answers,
    one query or several at once, filtered or not; the codes are never touched through the map."""
    x = _vectors(3000, seed=5)
    factory = f"IVF16,PQ16x4fsr,Refine({refine})"
    built = VectorIndex.create(32, factory)
    built.train(x)
    built.add(x, np.arange(3000))
    built.save(tmp_path / "v.faiss")
    mapped = VectorIndex.load(tmp_path / "v.faiss", factory, mmap=True, refine_reads="map")
    read = VectorIndex.load(tmp_path / "v.faiss", factory, mmap=True, refine_reads="read")
    assert mapped.refine_codes is None and read.refine_codes is not None
    rng = np.random.default_rng(6)
    queries = (x[rng.choice(3000, 12)] + rng.normal(0, 0.05, (12, 32))).astype(np.float32)
    allowed = rng.random(3000) < 0.4
    for knobs, k in ((SearchKnobs(nprobe=4), 10), (SearchKnobs(nprobe=16, refine_k_factor=3), 50)):
        for flt in (None, allowed):
            for batch in (queries[:1], queries[1:4], queries):
                want = mapped.search_batch(batch, k, flt, knobs)
                got = read.search_batch(batch, k, flt, knobs)
                for (ws, wi), (gs, gi) in zip(want, got, strict=True):
                    assert gi.tolist() == wi.tolist()
                    np.testing.assert_allclose(gs, ws, rtol=0, atol=1e-5)
                    assert flt is None or all(flt[i] for i in gi)


def _refined_file(tmp_path: Path) -> tuple[Path, str]:
    """20,000 rows: the rows the tests read lie well away from those ``RefineCodes.open`` checks through
    FAISS's map (0, 10000, 19999), whose pages, mapped (with the 64 KB around them), the cache keeps."""
    x = _vectors(20_000, seed=9)
    factory = "IVF8,PQ16x4fsr,Refine(SQfp16)"
    built = VectorIndex.create(32, factory)
    built.train(x)
    built.add(x, np.arange(20_000))
    built.save(tmp_path / "v.faiss")
    with open(tmp_path / "v.faiss", "rb+") as f:
        os.fsync(f.fileno())  # written back, so that the page cache may drop it
    return tmp_path / "v.faiss", factory


def _codes_in_memory(path: Path, factory: str, rows: np.ndarray) -> np.ndarray:
    """The rows' decoded codes from a copy of the index read into memory: through the map, the pages
    read would stay mapped, and a mapped page is not dropped from the cache."""
    loaded = VectorIndex.load(path, factory, mmap=False)  # held: it owns the index the views below see
    assert loaded.refine is not None
    codes = faiss.downcast_index(loaded.refine.refine_index)
    return np.vstack([codes.reconstruct(int(r)) for r in rows])


def _evict(path: Path) -> None:
    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def test_refine_reads_wait_for_the_disk_only_for_rows_not_cached(tmp_path: Path) -> None:
    """Each row is read without waiting (RWF_NOWAIT); the rows that were not in the page cache are
    advised together and then read waiting. The codes read are the same either way."""
    path, factory = _refined_file(tmp_path)
    loaded = VectorIndex.load(path, factory, mmap=True, refine_reads="read")
    codes = loaded.refine_codes
    assert codes is not None
    if not codes.nowait:
        pytest.skip("this kernel or file system refuses RWF_NOWAIT")
    rows = np.array([5000, 3000, 16000, 6000], dtype=np.int64)
    want = _codes_in_memory(path, factory, rows)
    np.testing.assert_array_equal(codes.vectors(rows), want)
    read, waited = codes.rows_read, codes.rows_waited
    np.testing.assert_array_equal(codes.vectors(rows), want)  # cached now: nothing waits
    assert (codes.rows_read, codes.rows_waited) == (read + 4, waited)
    _evict(path)
    np.testing.assert_array_equal(codes.vectors(rows), want)
    # the first came from the disk; the others may have come with the kernel's read around it
    after = codes.rows_waited
    assert waited + 1 <= after <= waited + 4
    np.testing.assert_array_equal(codes.vectors(rows), want)
    assert codes.rows_waited == after  # cached again


def test_refine_reads_advise_every_row_where_rwf_nowait_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that refuses RWF_NOWAIT (EOPNOTSUPP): every row is advised, then read."""
    path, factory = _refined_file(tmp_path)
    real_preadv = index_module.os.preadv

    def preadv(fd: int, buffers: object, offset: int, flags: int = 0) -> int:  # the kernel's answer
        if flags:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(index_module.os, "preadv", preadv)
    loaded = VectorIndex.load(path, factory, mmap=True, refine_reads="read")
    codes = loaded.refine_codes
    assert codes is not None and not codes.nowait
    rows = np.array([5000, 3000, 16000, 6000], dtype=np.int64)
    _evict(path)
    advised: list[int] = []
    real_advise = index_module.os.posix_fadvise
    monkeypatch.setattr(index_module.os, "posix_fadvise",
                        lambda fd, at, n, advice: advised.append(at) or real_advise(fd, at, n, advice))
    want = _codes_in_memory(path, factory, rows)
    np.testing.assert_array_equal(codes.vectors(rows), want)
    assert advised == [codes.offset + int(r) * codes.code_size for r in rows]


def _mapped_kb(path: Path) -> int:
    """Resident KB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's first line
            inside = len(head) >= 6 and head[5] == str(path)
        elif inside and head[0] == "Rss:":
            total += int(head[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").is_file(), reason="needs Linux's /proc/self/smaps")
@pytest.mark.parametrize("kernel", ["madvise", "older"])
def test_mapped_refinement_codes_are_faulted_in_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: str
) -> None:
    """``refine_reads="map"``: a thread maps every page of the codes at load, so that no search pays a
    page fault a candidate; the thread holds the index, so dropping it meanwhile is safe. Without
    ``MADV_POPULATE_READ`` (a kernel before 5.14, or no libc to call) it touches a byte a page."""
    if kernel == "older":
        monkeypatch.setattr("retrieval.index._madvise", lambda: None)
    x = _vectors(40_000, seed=8)
    factory = "IVF16,PQ16x4fsr,Refine(SQfp16)"
    built = VectorIndex.create(32, factory)
    built.train(x)
    built.add(x, np.arange(40_000))
    path = (tmp_path / "v.faiss").resolve()
    built.save(path)
    codes_kb = 40_000 * 32 * 2 // 1024  # 2.5 MB of the file's 3.2
    loaded = VectorIndex.load(path, factory, mmap=True, refine_reads="map")
    assert loaded.populating is not None
    loaded.populating.join(timeout=30)
    assert not loaded.populating.is_alive()
    assert _mapped_kb(path) >= codes_kb
    _s, ids = loaded.search(x[11], 3, None, SearchKnobs(nprobe=16))
    assert ids[0] == 11
    assert VectorIndex.load(path, factory, mmap=True, refine_reads="read").populating is None
    assert VectorIndex.load(path, factory, mmap=False, refine_reads="map").populating is None
    dropped = VectorIndex.load(path, factory, mmap=True, refine_reads="map")
    thread = dropped.populating
    del dropped
    assert thread is not None
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_refine_reads_fall_back_to_the_map_for_a_file_laid_out_otherwise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the codes lie is worked out from the file's end; bytes after FAISS's would shift it, and
    the check against FAISS's decoding catches that: the index is rescored through the map."""
    x = _vectors(900)
    built = VectorIndex.create(32, "IVF8,PQ16x4fsr,Refine(SQfp16)")
    built.train(x)
    built.add(x, np.arange(900))
    built.save(tmp_path / "v.faiss")
    with open(tmp_path / "v.faiss", "ab") as fh:
        fh.write(b"\0" * 512)  # one more "row" of trailing bytes: the offset lands a row late
    loaded = VectorIndex.load(tmp_path / "v.faiss", built.factory, mmap=True, refine_reads="read")
    assert loaded.refine_codes is None
    assert "read through the memory map instead" in caplog.text
    _s, ids = loaded.search(x[7], 3, None, SearchKnobs(nprobe=8))
    assert ids[0] == 7
    flat = VectorIndex.create(32, "Flat")
    flat.train(x)
    flat.add(x, np.arange(900))
    flat.save(tmp_path / "flat.faiss")
    assert VectorIndex.load(tmp_path / "flat.faiss", "Flat", refine_reads="read").refine_codes is None
    with pytest.raises(ValueError, match="refine_reads must be 'map' or 'read'"):
        VectorIndex.load(tmp_path / "v.faiss", built.factory, refine_reads="pread")
    loaded.add(x[:0], np.arange(900, 900))  # writable again (read into memory): rescored by FAISS
    assert loaded.refine_codes is None and not loaded.mmapped

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


# --- charge-grouped columns and the cohort statistics computed from them ---------------------------


def _random_meta(n: int, seed: int) -> tuple[Metadata, dict[str, Vocab]]:
    rng = np.random.default_rng(seed)
    vocab = {"charges": Vocab(["盗窃", "诈骗", "抢劫", "故意伤害"]), "provinces": Vocab(["JS", "ZJ", "GD", "SC"]),
             "tiers": Vocab(["数额较大", "数额巨大"])}
    term = rng.integers(0, 200, n)
    term[rng.random(n) < 0.03] = -1  # life
    term[rng.random(n) < 0.02] = -2  # death
    term[rng.random(n) < 0.2] = 0  # no term (fine only)
    meta = Metadata()
    meta.append({
        "charge": rng.choice([0, 0, 0, 1, 1, 2, 3, -1], n), "family": np.zeros(n), "province": rng.integers(-1, 4, n),
        "tier": rng.integers(-1, 2, n), "court": rng.integers(0, 50, n), "date": rng.integers(15000, 20000, n),
        "term": term, "form": rng.integers(0, len(SentenceForm), n), "circumstances": rng.integers(0, 1 << 12, n),
        "role": np.zeros(n), "amount": np.full(n, np.nan), "synthetic": np.ones(n, bool),
        "deleted": rng.random(n) < 0.05,
    })
    return meta, vocab


def test_charge_order_slices_hold_each_charge_in_row_order() -> None:
    meta, _vocab = _random_meta(5000, 1)
    order = ChargeOrder(meta)
    charge = np.asarray(meta["charge"])
    for c in (-1, 0, 1, 2, 3, 7):
        span = order.span(c)
        assert order.rows[span].tolist() == np.flatnonzero(charge == c).tolist()
        for name in ChargeOrder.COLUMNS:
            assert np.array_equal(order.columns[name][span], np.asarray(meta[name])[charge == c])
    span = order.span(0)
    rows = np.flatnonzero(charge == 0)[[0, 5, 9]]
    assert order.positions(span, [*rows.tolist(), int(np.flatnonzero(charge == 1)[0])]).tolist() == [0, 5, 9]
    assert ChargeOrder(Metadata()).span(0) == slice(0, 0)


def _reference_cohort(meta: Metadata, vocab: dict[str, Vocab], profile: DefendantProfile, scope: str,
                      exclude: list[int], min_n: int) -> dict:
    """The cohort as first written: full-length masks, np.percentile / np.median / np.histogram."""
    column = {name: np.asarray(meta[name]) for name in ("charge", "tier", "circumstances", "province", "deleted",
                                                      "term", "form")}
    base = ~column["deleted"]
    pid = vocab["provinces"].get(profile.province)
    if scope == "own":
        base &= column["province"] == pid
    elif scope == "other":
        base &= (column["province"] != pid) & (column["province"] >= 0)
    base[exclude] = False
    criteria = [("charge", column["charge"] == vocab["charges"].get(profile.charge))]
    if profile.tier is not None:
        criteria.append(("tier", column["tier"] == vocab["tiers"].get(profile.tier)))
    criteria.append(("circumstances",
                     (column["circumstances"] & KEY_MASK) == circumstance_mask(profile.key_circumstances)))
    for used in range(len(criteria), 0, -1):
        mask = base.copy()
        for _name, m in criteria[:used]:
            mask &= m
        if np.count_nonzero(mask) >= min_n:
            break
    rows = np.flatnonzero(mask)
    terms, forms, provinces = (column[name][rows].astype(np.int64) for name in ("term", "form", "province"))
    non_custodial = NON_CUSTODIAL_LUT[forms + 1]
    out: dict = {"relaxed": [name for name, _m in criteria[used:]], "n": len(rows),
                 "life": int(np.count_nonzero(terms == -1)), "death": int(np.count_nonzero(terms == -2)),
                 "by_province": []}
    for pid_ in np.unique(provinces).tolist():
        group = provinces == pid_
        months = terms[group & (terms >= 0)]
        reported = int(group.sum()) >= min_n and len(months) >= min_n
        out["by_province"].append((vocab["provinces"].name(pid_), int(group.sum()),
                                   float(np.median(months)) if reported else None,
                                   float(non_custodial[group].mean()) if reported else None))
    out["by_province"].sort(key=lambda p: (-p[1], p[0] or "~"))
    months = terms[terms >= 0]
    if len(rows) >= min_n and len(months) >= min_n:
        q1, median, q3 = np.percentile(months, [25, 50, 75])
        out["months"] = (float(q1), float(median), float(q3))
        out["histogram"] = np.histogram(months, bins=HISTOGRAM_EDGES_MONTHS)[0].tolist()
        out["share"] = float(non_custodial.mean())
    return out


def test_cohort_stats_match_the_full_scan_reference() -> None:
    meta, vocab = _random_meta(4000, 2)
    order = ChargeOrder(meta)
    rng = np.random.default_rng(3)
    codes = list(CircumstanceCode)
    checked = 0
    for i in range(80):
        profile = DefendantProfile(
            charges=(str(rng.choice(["盗窃", "诈骗", "抢劫", "故意伤害", "未知罪名"])),),
            tier=[None, "数额较大", "数额巨大"][i % 3], role=Role.SOLE,
            circumstances=frozenset(c for c in codes if rng.random() < 0.15), amount_yuan=None,
            province=str(rng.choice(["JS", "ZJ", "GD", "SC", "XZ"])), court=None, date=None,
        )
        scope = ("any", "own", "other")[i % 3]
        min_n = (1, 3, 40, 400)[i % 4]
        exclude = rng.integers(0, 4000, 5).tolist()
        query = CohortQuery(order, vocab, profile, scope=scope,
                            province_id=None if scope == "any" else vocab["provinces"].get(profile.province),
                            exclude_rows=exclude)
        got = cohort_stats([query], profile, scope=scope, min_n=min_n)
        want = _reference_cohort(meta, vocab, profile, scope, exclude, min_n)
        assert got.definition.get("relaxed", []) == want["relaxed"]
        assert (got.n, got.excluded) == (want["n"], {"life": want["life"], "death": want["death"]})
        assert [(p.province, p.n, p.median_months, p.share_non_custodial) for p in got.by_province] \
            == want["by_province"]
        assert got.reported == ("months" in want)
        if got.reported:
            checked += 1
            assert (got.q1_months, got.median_months, got.q3_months) == want["months"]  # bit for bit
            assert [b.count for b in got.histogram] == want["histogram"]
            assert got.share_non_custodial == want["share"]
    assert checked >= 20


@given(st.lists(st.integers(0, 400), min_size=1, max_size=300))
@settings(max_examples=300, deadline=None)
def test_month_statistics_from_counts_equal_numpy(sample: list[int]) -> None:
    months = np.asarray(sample, dtype=np.int64)
    counts = np.bincount(months)
    assert _percentiles(counts, (0.25, 0.5, 0.75)) == [float(v) for v in np.percentile(months, [25, 50, 75])]
    assert _median(counts) == float(np.median(months))
    assert _histogram(counts) == np.histogram(months, bins=HISTOGRAM_EDGES_MONTHS)[0].tolist()


def test_fusion_equals_a_running_sum_of_reciprocal_ranks() -> None:
    rng = np.random.default_rng(4)
    for dense_n, sparse_n in ((200, 200), (200, 0), (0, 50), (30, 7), (0, 0)):
        dense = rng.permutation(300)[:dense_n].astype(np.int64)
        sparse = rng.permutation(300)[:sparse_n].astype(np.int64)
        scores: Counter[int] = Counter()
        for ranking in (dense.tolist(), sparse.tolist()):
            for rank, row in enumerate(ranking):
                scores[row] += 1.0 / (RRF_K + rank + 1)
        ranked, fused = fuse(dense, sparse)
        assert ranked.tolist() == sorted(scores, key=lambda r: (-scores[r], r))
        assert fused.tolist() == [scores[r] for r in ranked.tolist()]


def test_cached_filters_stay_within_their_memory(tmp_path: Path) -> None:
    """Search filters are cached up to ``retrieval_filter_cache_mb`` (at least 16), every one still right:
    those by tier computed from the columns, those by charge and province composed."""
    from retrieval.search import RetrievalIndex
    from sentencing.config import Settings
    from sentencing.demo_corpus import generate_cases

    cases = list(generate_cases(80, seed=5))
    index = RetrievalIndex.build(iter(cases), tmp_path / "index",
                                 settings=Settings(home=tmp_path, retrieval_epochs=0, retrieval_filter_cache_mb=0))
    assert index._filter_slots() == 16
    queries = [(c, d) for c in generate_cases(60, seed=6, start=1_000) for d in c.defendants
               if index.profile(c, d).tier is not None]
    assert len({(p.charge, p.province, p.tier) for p in (index.profile(c, d) for c, d in queries)}) > 16  # evictions
    for same_tier in (False, True):
        first = [[h.case_id for h in index.search(c, d, k=5, same_tier=same_tier)] for c, d in queries]
        assert 0 < len(index._filters) <= 16
        again = [[h.case_id for h in index.search(c, d, k=5, same_tier=same_tier)] for c, d in queries]
        assert again == first  # evicted filters rebuilt alike
