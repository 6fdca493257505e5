"""The retrain feature cache: rows read back equal freshly built ones, and stale rows are never used."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from features.extract import FeatureExtractor
from features.spec import build_spec
from sentencing.case import Case
from sentencing.charges import default_catalogue
from sentencing.demo_corpus import generate_cases
from sentencing.store import CaseStore
from training import feature_cache
from training.dataset import Dataset, build_dataset
from training.feature_cache import FeatureCache
from training.train import TrainConfig, fit_models

CATALOGUE = default_catalogue()
SPEC = build_spec(CATALOGUE)
EXTRACTOR = FeatureExtractor(SPEC, CATALOGUE)


def _assert_same(got: Dataset, want: Dataset) -> None:
    for field in dataclasses.fields(Dataset):
        a, b = getattr(got, field.name), getattr(want, field.name)
        if isinstance(b, np.ndarray):
            assert a.shape == b.shape, field.name
            assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), field.name
        else:
            assert a == b, field.name


def _from_cache(cache: FeatureCache, store: CaseStore) -> tuple[Dataset, object]:
    wanted = [(k.seq, k.content_hash) for k in store.keys(upto=store.max_seq())]
    return cache.dataset(wanted, lambda seqs: ((s.seq, s.case) for s in store.iter_seqs(seqs)), EXTRACTOR)


def _fresh(store: CaseStore) -> Dataset:
    return build_dataset(store.iter_cases(), EXTRACTOR)


def _unsentenced(case: Case) -> Case:
    return case.before_judgment().model_copy(update={"id": case.id + "-pending"})


def test_cache_gives_the_dataset_build_dataset_gives_and_computes_only_what_is_new(tmp_path: Path) -> None:
    store = CaseStore(tmp_path / "cases.db")
    cases = list(generate_cases(240, 5))
    store.add([*cases, _unsentenced(cases[3])])  # a case with no sentenced defendant contributes no row
    cache = FeatureCache(tmp_path / "cache", SPEC)

    first, use = _from_cache(cache, store)
    assert (use.cached_cases, use.computed_cases, use.segments) == (0, 241, 1)
    _assert_same(first, _fresh(store))
    assert len(first) > 240

    again, use = _from_cache(cache, store)
    assert (use.cached_cases, use.computed_cases) == (241, 0)
    _assert_same(again, first)

    store.add(generate_cases(30, 5, start=240))
    grown, use = _from_cache(cache, store)
    assert (use.cached_cases, use.computed_cases, use.segments) == (241, 30, 2)
    _assert_same(grown, _fresh(store))


def test_edited_and_deleted_cases_are_never_served_from_the_cache(tmp_path: Path) -> None:
    store = CaseStore(tmp_path / "cases.db")
    cases = list(generate_cases(120, 9))
    store.add(cases)
    cache = FeatureCache(tmp_path / "cache", SPEC)
    _from_cache(cache, store)

    edited = cases[10].model_copy(update={"facts": cases[10].facts + "另查明，被告人系初犯。"})
    store.add([edited])  # same id, new content: the store gives it a new sequence number
    assert store.delete(cases[20].id)
    ds, use = _from_cache(cache, store)
    assert use.computed_cases == 1  # the edited case only
    _assert_same(ds, _fresh(store))
    assert cases[20].id not in ds.case_ids
    assert ds.case_ids[-1] == edited.id  # in store order: an edit moves the case to the end


def test_a_replaced_store_never_trains_on_the_old_rows(tmp_path: Path) -> None:
    # The same sequence numbers, other cases: every row is featurised again and the new ones are used.
    old = CaseStore(tmp_path / "old.db")
    old.add(generate_cases(40, 1))
    cache = FeatureCache(tmp_path / "cache", SPEC)
    _from_cache(cache, old)
    new = CaseStore(tmp_path / "new.db")
    new.add(generate_cases(40, 2))
    ds, use = _from_cache(cache, new)
    assert (use.cached_cases, use.computed_cases) == (0, 40)
    _assert_same(ds, _fresh(new))
    ds, use = _from_cache(cache, new)  # and the next run reads them back
    assert (use.cached_cases, use.computed_cases) == (40, 0)
    _assert_same(ds, _fresh(new))


def test_segments_are_compacted_and_leftovers_of_killed_writes_ignored(tmp_path: Path) -> None:
    store = CaseStore(tmp_path / "cases.db")
    cache = FeatureCache(tmp_path / "cache", SPEC, max_segments=2)
    start = 0
    keys = lambda: [(k.seq, k.content_hash) for k in store.keys(upto=store.max_seq())]  # noqa: E731
    fetch = lambda seqs: ((s.seq, s.case) for s in store.iter_seqs(seqs))  # noqa: E731
    for n in (50, 10, 10):
        store.add(generate_cases(n, 4, start=start))
        start += n
        _, use = cache.dataset(keys(), fetch, EXTRACTOR, texts=False)  # compaction keeps the texts all the same
    assert use.segments == 1  # the third segment made three: rewritten as one
    ds, use = _from_cache(cache, store)
    assert (use.cached_cases, use.computed_cases) == (70, 0)
    _assert_same(ds, _fresh(store))
    assert len(list(cache.folder.glob("seg-*.rows.parquet"))) == 1

    # What a run killed while writing leaves: a temporary file, and rows whose case list never came.
    partial = cache.folder / ".tmp-deadbeef-seg-1-2-x.rows.parquet"
    partial.write_bytes(b"partial")
    rows = next(cache.folder.glob("seg-*.rows.parquet"))
    (cache.folder / "seg-9-9-orphan.rows.parquet").write_bytes(rows.read_bytes())
    other_spec = tmp_path / "cache" / "spec-0000000000000000"
    other_spec.mkdir()
    store.add(generate_cases(5, 4, start=start))
    ds, use = _from_cache(cache, store)
    assert (use.cached_cases, use.computed_cases) == (70, 5)
    _assert_same(ds, _fresh(store))
    assert not other_spec.exists()  # rows of another feature spec can never be used: removed
    assert not partial.exists()


def test_cases_featurised_out_of_store_order_come_back_in_store_order(tmp_path: Path) -> None:
    # As when a store gets its first real case: synthetic cases held back until then join training.
    store = CaseStore(tmp_path / "cases.db")
    store.add(generate_cases(90, 12))
    keys = [(k.seq, k.content_hash) for k in store.keys(upto=store.max_seq())]
    cache = FeatureCache(tmp_path / "cache", SPEC)
    fetch = lambda seqs: ((s.seq, s.case) for s in store.iter_seqs(seqs))  # noqa: E731
    cache.dataset(keys[::3], fetch, EXTRACTOR)
    ds, use = cache.dataset(keys, fetch, EXTRACTOR)
    assert (use.cached_cases, use.computed_cases, use.segments) == (30, 60, 2)
    _assert_same(ds, _fresh(store))


def test_long_featurising_reports_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feature_cache, "_CHUNK", 10)
    monkeypatch.setattr(feature_cache, "_PROGRESS_EVERY", 20)
    store = CaseStore(tmp_path / "cases.db")
    store.add(generate_cases(65, 2))
    keys = [(k.seq, k.content_hash) for k in store.keys(upto=store.max_seq())]
    said: list[str] = []
    ds, _ = FeatureCache(tmp_path / "cache", SPEC).dataset(
        keys, lambda seqs: ((s.seq, s.case) for s in store.iter_seqs(seqs)), EXTRACTOR, said.append)
    assert said == ["featurising 65 cases not in the feature cache (0 cached)", "featurised 20 of 65 cases",
                    "featurised 40 of 65 cases", "featurised 60 of 65 cases"]
    _assert_same(ds, _fresh(store))  # chunk boundaries change nothing


def test_read_back_without_texts_and_with_shared_strings(tmp_path: Path) -> None:
    store = CaseStore(tmp_path / "cases.db")
    store.add(generate_cases(150, 17))
    cache = FeatureCache(tmp_path / "cache", SPEC)
    full, _ = _from_cache(cache, store)
    keys = [(k.seq, k.content_hash) for k in store.keys(upto=store.max_seq())]
    lean, _ = cache.dataset(keys, lambda seqs: ((s.seq, s.case) for s in store.iter_seqs(seqs)), EXTRACTOR,
                            texts=False)
    assert full.texts_loaded and not lean.texts_loaded and lean.texts == []
    _assert_same(dataclasses.replace(lean, texts=full.texts, texts_loaded=True), full)
    assert not lean.subset(np.arange(10)).texts_loaded
    with pytest.raises(ValueError, match="read without them"):
        fit_models(lean, SPEC, TrainConfig(text=True))
    # One object per distinct value: co-defendants share their case's text, every row its province.
    assert len({id(p) for p in full.provinces}) == len(set(full.provinces))
    by_case = {}
    for case_id, text in zip(full.case_ids, full.texts, strict=True):
        assert by_case.setdefault(case_id, text) is text


def test_another_feature_spec_gets_another_cache(tmp_path: Path) -> None:
    changed = SPEC.model_copy(update={"ruleset_version": SPEC.ruleset_version + "-next"})
    assert FeatureCache(tmp_path, SPEC).folder != FeatureCache(tmp_path, changed).folder
