"""Distributed pipeline on a real 2-worker Dask LocalCluster: Parquet stages, lightgbm.dask, index shards.

One cluster for the module; the pipeline runs once and several tests read its outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sentencing.config import Settings
from sentencing.demo_corpus import generate_cases, write_corpus
from sentencing.importers import read_cases

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

FAST = {"retrieval_epochs": 0, "retrieval_dim": 64}
N_CASES = 300
PER_PARTITION = 60


@pytest.fixture(scope="module")
def client():
    from training.distributed import close, connect

    c = connect("local:2")
    yield c
    close(c)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "demo.jsonl"
    write_corpus(path, N_CASES, 11)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"text_id": "broken", "fd": 5}\n')  # a bad line: reported, not fatal
    return path


@pytest.fixture(scope="module")
def run(client, corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    from training.distributed import DistributedConfig, run_pipeline
    from training.train import TrainConfig

    out = tmp_path_factory.mktemp("out")
    summary = run_pipeline(
        client, fmt="judge", paths=[corpus], work_dir=out / "work", model_dir=out / "model", index_dir=out / "index",
        config=DistributedConfig(cases_per_partition=PER_PARTITION, keep_work=True, progress=False,
                                 factory="IDMap2,Flat"),
        train_config=TrainConfig(n_estimators=25), settings=Settings(**FAST),
    )
    return summary, out


def test_stages_write_parquet_partitions_and_report_bad_lines(run) -> None:
    summary, out = run
    assert summary.workers == 2
    assert summary.cases == N_CASES
    assert summary.metrics["oof_defendants"] > 30 and 0 < summary.metrics["oof_coverage_calibrated"] <= 1
    assert summary.import_errors == 1 and f":{N_CASES + 1}" in summary.first_errors[0]
    assert [s.stage for s in summary.stages] == ["plan", "import", "features", "train", "encoder", "index"]
    cases = sorted((out / "work").glob("run-*/cases/part-*.parquet"))
    assert len(cases) == N_CASES // PER_PARTITION + 1  # the bad line makes a last partition of one line
    table = pq.read_table(cases[0])
    assert {"id", "province", "charge", "sentenced", "case"} <= set(table.column_names)
    feats = sorted((out / "work").glob("run-*/features/part-*.parquet"))
    rows = sum(pq.read_metadata(f).num_rows for f in feats)
    assert rows == summary.defendants > N_CASES  # some cases have several defendants


def test_distributed_model_serves_and_is_not_worse_than_local(run, tmp_path: Path) -> None:
    from training.evaluate import evaluate
    from training.predictor import RangePredictor
    from training.train import TrainConfig, train

    summary, out = run
    dist = RangePredictor.load(out / "model")
    manifest = json.loads((out / "model" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training"]["defendants"] == summary.defendants
    unseen = list(generate_cases(150, 12))
    local = RangePredictor.load(train(generate_cases(N_CASES, 11), tmp_path / "local",
                                      config=TrainConfig(n_estimators=25)))
    m_dist, _ = evaluate(dist, unseen)
    m_local, _ = evaluate(local, unseen)
    assert m_dist["n_defendants"] == m_local["n_defendants"] > 150
    assert m_dist["mae_months"] <= 1.3 * m_local["mae_months"] + 0.5
    assert m_dist["cail_score"] >= m_local["cail_score"] - 8
    assert 0.6 <= m_dist["coverage"] <= 0.97


@pytest.fixture(scope="module")
def whole(run, corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    """One index of every case, with the shards' encoder: what the shards together must answer like."""
    from retrieval.search import RetrievalIndex

    _summary, out = run
    return RetrievalIndex.build(read_cases("judge", [corpus], []), tmp_path_factory.mktemp("whole") / "index",
                                encoder_dir=out / "index" / "shard-000" / "encoder", factory="IDMap2,Flat",
                                settings=Settings(**FAST))


def test_sharded_search_equals_one_index(run, whole) -> None:
    from retrieval.shards import ShardedIndex, open_index

    summary, out = run
    sharded = open_index(out / "index", settings=Settings(**FAST))
    assert isinstance(sharded, ShardedIndex) and len(sharded.shards) == 2
    assert len(sharded) == sum(s["rows"] for s in summary.shards) == summary.defendants
    queries = list(generate_cases(8, 99))
    for q in queries:
        d = q.defendants[0]
        for scope in ("any", "other"):
            got = sharded.search(q, d, k=5, province_scope=scope, mode="dense")
            want = whole.search(q, d, k=5, province_scope=scope, mode="dense")
            assert [(h.case_id, h.defendant) for h in got] == [(h.case_id, h.defendant) for h in want]
            assert np.allclose([h.score for h in got], [h.score for h in want], atol=1e-5)
            assert all(h.charges[0] == got[0].charges[0] for h in got)  # same_charge filter held
        hybrid = sharded.search(q, d, k=5, province_scope="any", mode="hybrid")
        assert hybrid and len({(h.case_id, h.defendant) for h in hybrid}) == len(hybrid)
        # every defendant at once, as the service asks
        got_all = sharded.search_many(q, q.defendants, k=5, province_scope="any", mode="dense")
        want_all = whole.search_many(q, q.defendants, k=5, province_scope="any", mode="dense")
        assert [[(h.case_id, h.defendant) for h in hits] for hits in got_all] == [
            [(h.case_id, h.defendant) for h in hits] for hits in want_all
        ]
    with pytest.raises(ValueError, match="k must be"):
        sharded.search(queries[0], queries[0].defendants[0], k=0)


def test_sharded_cohorts_equal_one_index(run, whole, corpus: Path) -> None:
    from retrieval.shards import open_index

    _summary, out = run
    sharded = open_index(out / "index", settings=Settings(**FAST))
    queries = list(generate_cases(12, 98)) + list(read_cases("judge", [corpus], []))[:6]  # indexed cases too
    reported = relaxed = 0
    for q in queries:
        for d in q.defendants:
            for scope in ("any", "other", "own"):
                got = sharded.cohort(q, d, province_scope=scope)
                assert got == whole.cohort(q, d, province_scope=scope)
                reported += got.reported
                relaxed += "relaxed" in got.definition
    assert reported > 10 and relaxed > 0  # both the statistics and the relaxation were compared
    assert sharded.indexed(queries[-1].id) and not sharded.indexed("no such case")
    with pytest.raises(ValueError, match="province_scope"):
        sharded.cohort(queries[0], queries[0].defendants[0], province_scope="nowhere")


def test_service_serves_a_sharded_index_over_http(run, tmp_path: Path) -> None:
    import httpx

    from serve.app import create_app
    from serve.auth import KeyRole
    from serve.server import BackgroundServer

    summary, out = run
    settings = Settings(home=tmp_path / "home", model_dir=out / "model", index_dir=out / "index", **FAST)
    app = create_app(settings)
    key = app.state.service.keys.create(KeyRole.PROSECUTOR, office="鼓楼区人民检察院")[0]
    case = next(generate_cases(1, 97))
    body = {"id": "分片-1", "facts": case.facts, "province": "JS",
            "defendants": [{"name": d.name, "charges": [c.name for c in d.charges]} for d in case.defendants]}
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["index_size"] == summary.defendants
        res = client.post("/v1/recommendations", json=body, headers={"Authorization": f"Bearer {key}"})
        assert res.status_code == 200, res.text
        first = res.json()["defendants"][0]
        assert first["similar_cases"] and first["cohort"]["n"] > 0


def test_sharded_index_adds_without_rebuild(run, tmp_path: Path) -> None:
    import shutil

    from retrieval.shards import ShardedIndex

    _, out = run
    copy = tmp_path / "index"
    shutil.copytree(out / "index", copy)
    index = ShardedIndex.load(copy, settings=Settings(**FAST))
    before = len(index)
    new = list(generate_cases(20, 77))
    added = index.add(new)
    assert added > 0
    again = ShardedIndex.load(copy, settings=Settings(**FAST))
    assert len(again) == before + added
    probe = new[1].model_copy(update={"id": "probe"})
    hits = again.search(probe, probe.defendants[0], k=3, province_scope="any", mode="dense")
    assert hits[0].case_id == new[1].id  # the added case is found as its own nearest neighbour


def test_bad_scheduler_and_input_are_named() -> None:
    from training.distributed import connect, plan_input

    with pytest.raises(ValueError, match="scheduler"):
        connect("not-an-address")
    with pytest.raises(ValueError, match="local:N"):
        connect("local:zero")
    with pytest.raises(FileNotFoundError, match="input"):
        plan_input("judge", ["/nonexistent/x.jsonl"], 10)
    with pytest.raises(ValueError, match="format"):
        plan_input("nope", [], 10)


def test_retrain_on_the_cluster_promotes_a_servable_version(client, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from sentencing.store import CaseStore
    from training.predictor import RangePredictor
    from training.registry import ModelRegistry
    from training.retrain import RetrainConfig, retrain

    store = CaseStore(tmp_path / "cases.db")
    store.add(generate_cases(300, 5))
    registry = ModelRegistry(tmp_path / "registry")
    report = retrain(store, registry, config=RetrainConfig(with_index=False), scheduler=client)
    assert report.promoted, report.reason
    assert report.trained_cases + report.held_back_cases == 300
    assert 30 < report.held_back_cases < 100
    predictor = RangePredictor.load(registry.model_dir(report.version))
    assert predictor.manifest["training"]["cases"] == report.trained_cases
    assert not (registry.model_dir(report.version).parent / ".distributed-work").exists()
