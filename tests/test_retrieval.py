"""Similar-case retrieval end to end: a real trained encoder, real FAISS, the real sparse side, on disk."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from retrieval.cohort import CohortStats
from retrieval.encoder import StaticEncoder
from retrieval.index import IndexFormatError
from retrieval.search import RetrievalIndex, RetrievalQueryError, SimilarCase
from retrieval.text import case_document
from sentencing.case import Case, Charge, Court, Defendant, Role
from sentencing.config import Settings
from sentencing.sentence import Sentence, SentenceKind
from tests.retrieval_cases import make_cases

SETTINGS = Settings(retrieval_epochs=1, retrieval_dim=64, retrieval_max_per_province=3, retrieval_max_per_court=2)


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return make_cases(600, seed=11)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, corpus: list[Case]) -> Path:
    out = tmp_path_factory.mktemp("retrieval") / "index"
    RetrievalIndex.build(iter(corpus), out, settings=SETTINGS)
    return out


@pytest.fixture()
def index(built: Path, tmp_path: Path) -> RetrievalIndex:
    """A private copy of the built bundle, so tests may change it."""
    copy = tmp_path / "index"
    shutil.copytree(built, copy)
    return RetrievalIndex.load(copy, settings=SETTINGS)


def test_numpy_encoder_equals_sentence_transformers(built: Path, corpus: list[Case]) -> None:
    from sentence_transformers import SentenceTransformer

    docs = [case_document(c, d) for c in corpus[:64] for d in c.defendants] + ["", "未登录的词语ABC 123"]
    numpy_vecs = StaticEncoder(built / "encoder").encode(docs)
    torch_vecs = SentenceTransformer(str(built / "encoder"), device="cpu").encode(docs, convert_to_numpy=True)
    assert numpy_vecs.shape == (len(docs), 64)
    assert np.abs(numpy_vecs[:-2] - torch_vecs[:-2]).max() < 1e-5
    assert np.allclose(np.linalg.norm(numpy_vecs[:-2], axis=1), 1.0, atol=1e-5)
    assert not np.isnan(numpy_vecs).any()  # an empty document is a zero vector, never NaN


def test_build_records_encoder_training_and_factory(index: RetrievalIndex, corpus: list[Case]) -> None:
    info = index.info()
    assert info["rows"] == len(corpus) and len(index) == len(corpus)
    assert info["factory"] == "IDMap2,Flat" and info["factory_source"] == "size"
    assert info["encoder"]["contrastive"] is True and info["encoder"]["pairs"] > 100
    assert info["sparse"] is True
    assert index.vectors.mmapped  # loaded memory-mapped


def _query(corpus: list[Case], charge: str, province: str = "JS") -> Case:
    return next(c for c in corpus if c.defendants[0].charges[0].name == charge and c.province == province)


def test_search_other_provinces_same_charge_spread(index: RetrievalIndex, corpus: list[Case]) -> None:
    query = _query(corpus, "盗窃")
    hits = index.search(query, query.defendants[0], k=10)
    assert len(hits) == 10
    assert all(isinstance(h, SimilarCase) and isinstance(h.sentence, Sentence) for h in hits)
    assert all(h.province != "JS" and h.province is not None for h in hits)
    assert all(h.charges == ["盗窃"] and "同一罪名：盗窃" in h.matched for h in hits)
    assert all(h.case_id != query.id for h in hits)
    assert max(Counter(h.province for h in hits).values()) <= 3
    assert max(Counter(h.court for h in hits).values()) <= 2
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.defendant.endswith("某") and h.synthetic for h in hits)
    assert any(r.startswith("涉案数额") for h in hits for r in h.matched)


def test_search_own_province_and_dates(index: RetrievalIndex, corpus: list[Case]) -> None:
    query = _query(corpus, "诈骗", "GD")
    lo, hi = dt.date(2020, 1, 1), dt.date(2020, 12, 31)
    hits = index.search(query, query.defendants[0], k=5, province_scope="own", date_from=lo, date_to=hi)
    assert hits and all(h.province == "GD" and h.date is not None and lo <= h.date <= hi for h in hits)
    # Only 3 GD courts exist: with at most 2 per court the spread must top up rather than return fewer.
    many = index.search(query, query.defendants[0], k=10, province_scope="own")
    assert len(many) == 10 and all(h.province == "GD" for h in many)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_modes_find_the_same_facts_elsewhere(index: RetrievalIndex, corpus: list[Case], mode: str) -> None:
    query = _query(corpus, "危险驾驶")
    twin = query.model_copy(
        update={"id": "twin", "province": "SC", "court": Court(name="四川省成都市锦江区人民法院", province="SC")}
    )
    index.add([twin])
    hits = index.search(query, query.defendants[0], k=10, mode=mode)
    assert hits[0].case_id == "twin", [h.case_id for h in hits]
    assert hits[0].court == "四川省成都市锦江区人民法院"


def test_query_outcome_never_used(index: RetrievalIndex, corpus: list[Case]) -> None:
    query = _query(corpus, "盗窃", "ZJ")
    with_label = index.search(query, query.defendants[0])
    changed = query.model_copy(deep=True)
    changed.defendants[0].sentence = Sentence(kind=SentenceKind.LIFE)
    changed.judgment = "判决如下：被告人犯盗窃罪，判处无期徒刑。"
    assert [h.case_id for h in index.search(changed, changed.defendants[0])] == [h.case_id for h in with_label]
    blind = query.before_judgment()
    assert [h.case_id for h in index.search(blind, blind.defendants[0])] == [h.case_id for h in with_label]


def test_bad_queries_name_the_field(index: RetrievalIndex, corpus: list[Case]) -> None:
    query = _query(corpus, "盗窃")
    no_province = query.model_copy(update={"province": None, "court": None})
    with pytest.raises(RetrievalQueryError, match="province"):
        index.search(no_province, no_province.defendants[0])
    assert index.search(no_province, no_province.defendants[0], province_scope="any")
    no_charge = query.model_copy(deep=True)
    no_charge.defendants[0].charges = []
    with pytest.raises(RetrievalQueryError, match="charges"):
        index.search(no_charge, no_charge.defendants[0])
    with pytest.raises(RetrievalQueryError, match="k must"):
        index.search(query, query.defendants[0], k=0)
    with pytest.raises(RetrievalQueryError, match="date_from"):
        index.search(query, query.defendants[0], date_from=dt.date(2022, 1, 1), date_to=dt.date(2021, 1, 1))
    with pytest.raises(RetrievalQueryError, match="province_scope"):
        index.search(query, query.defendants[0], province_scope="mars")  # type: ignore[arg-type]
    unknown = query.model_copy(deep=True)
    unknown.defendants[0].charges = [Charge(name="从未见过的罪名")]
    assert index.search(unknown, unknown.defendants[0]) == []


def test_add_delete_save_reload(index: RetrievalIndex, corpus: list[Case]) -> None:
    query = _query(corpus, "故意伤害")
    before = len(index)
    new = [c.model_copy(update={"id": f"new-{i}", "province": "HB"}) for i, c in enumerate(corpus[:5])]
    assert index.add(new) == 5 and len(index) == before + 5
    assert index.add(new[:1]) == 1 and len(index) == before + 5  # re-adding replaces, never duplicates
    assert index.delete(["new-0", "new-1", "missing"]) == 2 and len(index) == before + 3
    assert index.delete(["new-0"]) == 0
    index.save()
    reloaded = RetrievalIndex.load(index.directory, settings=SETTINGS)
    assert len(reloaded) == before + 3 and reloaded.manifest["generation"] == 2
    hits = reloaded.search(query, query.defendants[0], k=50, same_charge=False, province_scope="any")
    ids = {h.case_id for h in hits}
    assert "new-0" not in ids and "new-1" not in ids
    assert len(list(index.directory.glob("gen-*"))) == 1
    # the reloaded (memory-mapped) index accepts additions too
    assert reloaded.add([corpus[7].model_copy(update={"id": "after-reload"})]) == 1
    reloaded.save()
    assert len(RetrievalIndex.load(index.directory, settings=SETTINGS)) == before + 4


def test_display_rows_are_read_line_by_line_before_and_after_additions(
    index: RetrievalIndex, corpus: list[Case]
) -> None:
    """Hits read their own line of rows.jsonl (pread): every row, the last one included, pending
    rows before a save, rows appended by a save; a line cut off by a truncated file is an error."""
    def lines() -> list[bytes]:
        data = (index.directory / "rows.jsonl").read_bytes()
        return [data[o : data.index(b"\n", o)] for o in map(int, index.rows.offsets)]

    n = len(index.rows)
    assert [index.rows.raw(r) for r in range(n)] == lines()
    assert json.loads(index.rows.raw(n - 1))["case_id"] == index.case_ids[n - 1]
    index.add([c.model_copy(update={"id": f"late-{i}"}) for i, c in enumerate(corpus[:3])])
    pending = [index.rows.raw(r) for r in range(n, len(index.rows))]
    assert [json.loads(x)["case_id"] for x in pending] == [index.case_ids[r] for r in range(n, len(index.rows))]
    index.save()
    assert [index.rows.raw(r) for r in range(n, len(index.rows))] == pending
    reloaded = RetrievalIndex.load(index.directory, settings=SETTINGS)
    assert [reloaded.rows.raw(r) for r in range(len(reloaded.rows))] == [
        index.rows.raw(r) for r in range(len(index.rows))
    ]
    last = int(reloaded.rows.offsets[-1])
    with open(reloaded.directory / "rows.jsonl", "r+b") as fh:
        fh.truncate(last)
    with pytest.raises(IndexFormatError, match="beyond the end"):
        reloaded.rows.raw(len(reloaded.rows) - 1)


def test_cached_filters_follow_additions_and_deletions(built: Path, corpus: list[Case], tmp_path: Path) -> None:
    """Searches reuse their row filters; a change to the rows must never be hidden by a cached one."""
    import shutil

    shutil.copytree(built, tmp_path / "idx")
    index = RetrievalIndex.load(tmp_path / "idx", settings=SETTINGS)
    query = _query(corpus, "盗窃")
    first = index.search(query, query.defendants[0], k=10)  # filter: same charge, other provinces
    assert first
    assert index.delete([first[0].case_id]) >= 1
    again = index.search(query, query.defendants[0], k=10)
    assert first[0].case_id not in {h.case_id for h in again}
    twin = query.model_copy(update={"id": "twin", "province": "XZ"})  # same facts, another province
    assert index.add([twin]) >= 1
    hits = index.search(query, query.defendants[0], k=10)
    assert hits[0].case_id == "twin"


def test_failed_save_keeps_the_stored_index(index: RetrievalIndex, corpus: list[Case], monkeypatch) -> None:
    before = len(index)
    index.add([corpus[3].model_copy(update={"id": "doomed"})])

    def broken(_path: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(index.vectors, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        index.save()
    assert len(RetrievalIndex.load(index.directory, settings=SETTINGS)) == before


def test_broken_or_missing_bundles_are_named(built: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="does not exist"):
        RetrievalIndex.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexFormatError, match=r"manifest\.json is missing"):
        RetrievalIndex.load(tmp_path / "empty")
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    gen = next(copy.glob("gen-*"))
    (gen / "meta" / "term.npy").unlink()
    with pytest.raises(IndexFormatError, match=r"term\.npy"):
        RetrievalIndex.load(copy)
    shutil.rmtree(copy)
    shutil.copytree(built, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["rows"] += 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="rows"):
        RetrievalIndex.load(copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        RetrievalIndex.load(copy)


def test_cohort_statistics(index: RetrievalIndex, corpus: list[Case]) -> None:
    query = _query(corpus, "盗窃")
    stats = index.cohort(query, query.defendants[0])
    assert isinstance(stats, CohortStats) and stats.reported and stats.reason is None
    assert stats.definition["charge"] == "盗窃" and stats.definition["tier"]
    members = [
        d for c in corpus for d in c.defendants
        if c.id != query.id and d.charges[0].name == "盗窃" and _same_key(d, query.defendants[0])
        and _tier(c, d) == stats.definition["tier"]
    ] if "relaxed" not in stats.definition else None
    if members is not None:
        assert stats.n == len(members)
        months = [d.sentence.term_months for d in members]
        assert stats.median_months == pytest.approx(float(np.median(months)))
    assert stats.q1_months <= stats.median_months <= stats.q3_months
    assert sum(b.count for b in stats.histogram) == stats.n - sum(stats.excluded.values())
    assert sum(p.n for p in stats.by_province) == stats.n
    assert 0.0 <= stats.share_non_custodial <= 1.0


def _same_key(a: Defendant, b: Defendant) -> bool:
    from retrieval.profile import KEY_CIRCUMSTANCES

    return {c for c in a.circumstance_codes if c in KEY_CIRCUMSTANCES} == {
        c for c in b.circumstance_codes if c in KEY_CIRCUMSTANCES
    }


def _tier(case: Case, d: Defendant) -> str | None:
    from retrieval.profile import statutory_tier

    return statutory_tier(case, d)[1]


def test_small_cohort_is_not_reported_and_exclusions_are_counted(index: RetrievalIndex) -> None:
    def robbery(i: int, sentence: Sentence) -> Case:
        d = Defendant(name=f"王{i}", charges=[Charge(name="抢劫")], sentence=sentence)
        return Case(id=f"rob-{i}", province="JS", facts="被告人持刀抢劫路人财物。", defendants=[d])

    index.add([robbery(1, Sentence(kind=SentenceKind.FIXED_TERM, months=48)),
               robbery(2, Sentence(kind=SentenceKind.LIFE))])
    query = robbery(3, Sentence(kind=SentenceKind.FIXED_TERM, months=40))
    stats = index.cohort(query, query.defendants[0])
    assert not stats.reported and stats.n == 2 and stats.median_months is None
    assert "少于3件" in stats.reason
    assert stats.excluded["life"] == 1
    index.add([robbery(4, Sentence(kind=SentenceKind.FIXED_TERM, months=60)),
               robbery(5, Sentence(kind=SentenceKind.FIXED_TERM, months=36))])
    stats = index.cohort(query, query.defendants[0])
    assert stats.reported and stats.n == 4 and stats.median_months == 48.0 and stats.excluded["life"] == 1


@pytest.mark.parametrize("large", ["IVF16,SQ8", "IDMap2,HNSW32,Flat", "IVF16,PQ32x4fsr,Refine(SQ8)"])
def test_large_corpus_switches_to_approximate_and_matches_exact(
    tmp_path: Path, corpus: list[Case], built: Path, large: str
) -> None:
    settings = SETTINGS.model_copy(update={"retrieval_exact_max": 200, "retrieval_large_factory": large})
    hnsw = RetrievalIndex.build(corpus, tmp_path / "approx", settings=settings, encoder_dir=built / "encoder")
    assert hnsw.info()["factory"] == large
    exact = RetrievalIndex.load(built, settings=SETTINGS)
    agree = 0
    queries = [c for c in corpus[:40] if c.province]
    for q in queries:
        a = {h.case_id for h in hnsw.search(q, q.defendants[0], mode="dense")}
        b = {h.case_id for h in exact.search(q, q.defendants[0], mode="dense")}
        agree += len(a & b) / max(1, len(b))
    assert agree / len(queries) >= 0.9
    hnsw.delete([queries[0].id])  # HNSW cannot remove_ids: the tombstone must hide it (IVF removes it)
    hits = hnsw.search(queries[1], queries[1].defendants[0], k=100, same_charge=False, province_scope="any")
    assert queries[0].id not in {h.case_id for h in hits}


@pytest.mark.parametrize(("factory", "refine_reads"), [
    (None, None), ("IVF16,PQ32x4fsr,Refine(SQ8)", "map"), ("IVF16,PQ32x4fsr,Refine(SQfp16)", "read"),
])
@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_search_many_answers_each_defendant_as_alone(
    tmp_path: Path, corpus: list[Case], built: Path, factory: str | None, refine_reads: str | None, mode: str
) -> None:
    """Co-defendants searched together (one FAISS call per shared filter) get what each gets alone:
    a defendant with another charge, one with a charge no row has, the case's own rows left out.
    With ``retrieval_refine_reads="read"`` they also get what FAISS's own rescoring gives them."""
    mapped = None
    if factory is None:
        index, settings = RetrievalIndex.load(built, settings=SETTINGS), SETTINGS
        assert index.info()["refine_reads"] is None  # an exact index has no refinement codes
    else:
        settings = SETTINGS.model_copy(update={"retrieval_exact_max": 300, "retrieval_large_factory": factory,
                                               "retrieval_refine_reads": refine_reads})
        RetrievalIndex.build(iter(corpus), tmp_path / "idx", settings=settings, encoder_dir=built / "encoder")
        index = RetrievalIndex.load(tmp_path / "idx", settings=settings)
        assert index.info()["refine_reads"] == refine_reads
        if refine_reads == "read":
            mapped = RetrievalIndex.load(tmp_path / "idx", settings=settings.model_copy(
                update={"retrieval_refine_reads": "map"}))
    cases = [c for c in corpus if c.province][:6]
    for case in cases:
        first = case.defendants[0]
        defendants = [
            first,
            first.model_copy(update={"name": "乙", "role": Role.ACCESSORY}),  # the same filter, another document
            first.model_copy(update={"name": "丙", "charges": [Charge(name="故意伤害")]}),
            first.model_copy(update={"name": "丁", "charges": [Charge(name="不存在的罪名")]}),  # no row to rank
        ]
        case = case.model_copy(update={"defendants": defendants})
        together = index.search_many(case, defendants, k=7, mode=mode)
        alone = [index.search(case, d, k=7, mode=mode) for d in defendants]
        assert [[h.model_dump() for h in hits] for hits in together] == [
            [h.model_dump() for h in hits] for hits in alone
        ]
        if mapped is not None:
            by_faiss = mapped.search_many(case, defendants, k=7, mode=mode)
            assert [[h.case_id for h in hits] for hits in together] == [[h.case_id for h in hits] for hits in by_faiss]
            assert [h.score for hits in together for h in hits] == pytest.approx(
                [h.score for hits in by_faiss for h in hits], abs=1e-5)
        assert together[-1] == [] and all(together[:-1])
        assert case.id not in {h.case_id for hits in together for h in hits}
    with pytest.raises(ValueError, match="2 guideline results for 1 defendants"):
        index.search_many(cases[0], cases[0].defendants[:1], guidelines=[None, None])


def test_refined_index_replaces_and_deletes_by_tombstone_across_a_reload(tmp_path: Path, corpus: list[Case]) -> None:
    """A refined IVF numbers rows by position and cannot remove them: a deleted or replaced case's
    old rows stay in place, hidden by their tombstones, through a save and a memory-mapped load."""
    settings = SETTINGS.model_copy(update={"retrieval_exact_max": 300,
                                           "retrieval_large_factory": "IVF16,PQ32x4fsr,Refine(SQ8)"})
    index = RetrievalIndex.build(iter(corpus[:500]), tmp_path / "idx", settings=settings)
    assert index.vectors.positional
    queries = [c for c in corpus[:500] if c.province]
    gone, replaced = queries[0], queries[1]
    index.delete([gone.id])
    index.add([replaced])
    index.save()
    loaded = RetrievalIndex.load(tmp_path / "idx", settings=settings)
    assert loaded.vectors.positional and loaded.vectors.ntotal == len(loaded.meta)
    hits = loaded.search(gone, gone.defendants[0], k=100, same_charge=False, province_scope="any", mode="dense")
    assert gone.id not in {h.case_id for h in hits}
    other = queries[2]
    found = loaded.search(other, other.defendants[0], k=100, same_charge=False, province_scope="any", mode="dense")
    assert [h.case_id for h in found].count(replaced.id) <= len(replaced.defendants)  # no stale duplicate
    assert np.count_nonzero(~np.asarray(loaded.meta["deleted"])) == len(loaded)


def test_cli_search_cohort_and_errors(built: Path, corpus: list[Case], tmp_path: Path, capsys) -> None:
    from sentencing.cli import main

    query = _query(corpus, "诈骗")
    path = tmp_path / "case.json"
    path.write_text(query.model_dump_json(), encoding="utf-8")
    assert main(["retrieval", "search", str(path), "--index-dir", str(built), "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(SimilarCase.model_validate_json(line).charges == ["诈骗"] for line in lines)
    assert main(["retrieval", "cohort", str(path), "--index-dir", str(built)]) == 0
    assert CohortStats.model_validate_json(capsys.readouterr().out).definition["charge"] == "诈骗"
    path.write_text('{"id": "x", "defendants": [{"name": ""}]}', encoding="utf-8")
    assert main(["retrieval", "search", str(path), "--index-dir", str(built)]) == 2
    assert "defendants.0.name" in capsys.readouterr().err
    assert main(["retrieval", "info", "--index-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bundle_with_sparse_tokens_of_another_version_is_refused(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "old"
    shutil.copytree(built, copy)
    gen = next(copy.glob("gen-*"))
    (gen / "sparse.json").unlink()  # as the BM25 bundles of version 1 were written
    (gen / "bm25_vocab.json").write_text("{}", encoding="utf-8")
    with pytest.raises(IndexFormatError, match=r"BM25 format \(version 1\).*sentencing retrieval build"):
        RetrievalIndex.load(copy, settings=SETTINGS)
