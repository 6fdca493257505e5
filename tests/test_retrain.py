"""Retraining: registry consistency, the promotion rule, incremental index updates, and kill-at-any-point."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentencing.config import Settings
from sentencing.demo_corpus import generate_cases
from sentencing.store import CaseStore
from training.predictor import RangePredictor
from training.registry import ModelRegistry, RegistryError
from training.retrain import EvaluationSample, PromotionRule, RetrainConfig, held_back, retrain

REPO = Path(__file__).resolve().parents[1]
FAST = {"LIANGXING_RETRIEVAL_EPOCHS": "0", "LIANGXING_RETRIEVAL_DIM": "64"}


@pytest.fixture()
def fast_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    return Settings()


def _store(path: Path, n: int, seed: int, start: int = 0) -> CaseStore:
    store = CaseStore(path)
    store.add(generate_cases(n, seed, start=start))
    return store


def test_promotion_rule_states_its_reasons() -> None:
    rule = PromotionRule()
    serving = {"n_defendants": 100, "cail_score": 80.0, "mae_months": 10.0, "coverage": 0.8}
    ok, why = rule.decide({**serving, "cail_score": 79.6}, serving)
    assert ok and "not worse" in why
    ok, why = rule.decide({**serving, "cail_score": 79.0}, serving)
    assert not ok and "CAIL" in why
    ok, why = rule.decide({**serving, "mae_months": 10.5}, serving)
    assert not ok and "MAE" in why
    ok, why = rule.decide({**serving, "coverage": 0.6}, serving)
    assert not ok and "coverage" in why
    assert rule.decide({"n_defendants": 0}, None)[0] is False
    assert rule.decide(serving, None) == (True, "first version: nothing serving to compare with")


def test_held_back_slice_is_fixed() -> None:
    cases = list(generate_cases(400, 3))
    first = [held_back(c, 0.2) for c in cases]
    assert first == [held_back(c, 0.2) for c in cases]
    assert 0.1 < sum(first) / len(first) < 0.3


def test_evaluation_sample_is_bounded_stable_and_in_store_order() -> None:
    cases = [c for c in generate_cases(600, 4) if held_back(c, 0.5)]
    full = EvaluationSample(10**6)
    capped = EvaluationSample(25)
    for seq, case in enumerate(cases):
        full.offer(seq, case.id, case)
        capped.offer(seq, case.id, case)
    assert [c.id for c in full.items()] == [c.id for c in cases]  # under the cap: the whole slice, in order
    picked = capped.items()
    assert len(picked) == 25
    # The 25 lowest in the slice's hash order, whatever order they arrived in, listed in store order.
    lowest = sorted(cases, key=lambda c: hashlib.sha256(c.id.encode()).digest()[:4])[:25]
    assert {c.id for c in picked} == {c.id for c in lowest}
    order = {c.id: i for i, c in enumerate(cases)}
    assert [order[c.id] for c in picked] == sorted(order[c.id] for c in picked)
    shuffled = EvaluationSample(25)
    for seq, case in reversed(list(enumerate(cases))):
        shuffled.offer(seq, case.id, case)
    assert [c.id for c in shuffled.items()] == [c.id for c in picked]


def test_retrain_scores_at_most_evaluate_max_cases(tmp_path: Path, fast_settings: Settings) -> None:
    store = _store(tmp_path / "cases.sqlite", 400, 8)
    report = retrain(store, ModelRegistry(tmp_path / "registry"),
                     config=RetrainConfig(with_index=False, evaluate_max_cases=30), settings=fast_settings)
    assert report.held_back_cases > 30  # the slice is still held out of training whole
    assert report.trained_cases + report.held_back_cases == 400
    evaluated = next(s for s in report.stages if s.stage == "evaluate")
    assert evaluated.cases == 30
    assert report.promoted and report.candidate_metrics["n_defendants"] >= 30


def test_retrain_registers_promotes_and_updates_index_incrementally(tmp_path: Path, fast_settings: Settings) -> None:
    store = _store(tmp_path / "cases.sqlite", 600, 11)
    registry = ModelRegistry(tmp_path / "registry")
    first = retrain(store, registry, settings=fast_settings)
    assert first.promoted and first.index_mode == "rebuild"
    assert registry.current_id() == first.version
    assert first.candidate_metrics["n_defendants"] > 0
    assert not first.held_back_real  # a synthetic-only store says so

    nothing = retrain(store, registry, settings=fast_settings)
    assert nothing.version is None and "no case added" in nothing.reason

    assert first.feature_cache == {"cached_cases": 0, "computed_cases": first.trained_cases, "segments": 1}
    store.add(generate_cases(100, 11, start=600))
    second = retrain(store, registry, config=RetrainConfig(encoder_growth=0.5), settings=fast_settings)
    assert second.new_cases == 100 and second.index_mode == "incremental"
    # Only the new cases were featurised; the rest came back from the feature cache.
    new_trained = second.trained_cases - first.trained_cases
    assert second.feature_cache == {"cached_cases": first.trained_cases, "computed_cases": new_trained,
                                    "segments": 2}
    info = registry.info(second.version)
    assert info.parent == first.version and info.store_seq == store.max_seq()
    from retrieval.search import RetrievalIndex

    old_rows = RetrievalIndex.load(registry.index_dir(first.version), settings=fast_settings).manifest["live_rows"]
    new_rows = RetrievalIndex.load(registry.index_dir(second.version), settings=fast_settings).manifest["live_rows"]
    assert new_rows > old_rows
    if second.promoted:
        assert registry.current_id() == second.version
        assert registry.rollback(reason="test") == first.version
        with pytest.raises(RegistryError):
            registry.rollback()
    else:
        assert registry.current_id() == first.version


def test_feature_cache_trains_the_same_model_as_streaming(tmp_path: Path, fast_settings: Settings) -> None:
    store = _store(tmp_path / "cases.sqlite", 300, 13)
    cached, streamed = ModelRegistry(tmp_path / "cached"), ModelRegistry(tmp_path / "streamed")
    retrain(store, cached, config=RetrainConfig(with_index=False), settings=fast_settings)
    retrain(store, streamed, config=RetrainConfig(with_index=False, feature_cache=False), settings=fast_settings)
    store.add(generate_cases(40, 13, start=300))
    a = retrain(store, cached, config=RetrainConfig(with_index=False), settings=fast_settings)
    b = retrain(store, streamed, config=RetrainConfig(with_index=False, feature_cache=False), settings=fast_settings)
    assert a.feature_cache is not None and a.feature_cache["computed_cases"] < 40 and b.feature_cache is None
    assert (a.trained_cases, a.held_back_cases) == (b.trained_cases, b.held_back_cases)
    assert a.candidate_metrics == b.candidate_metrics
    model_a, model_b = (RangePredictor.load(r.model_dir(v.version)) for r, v in ((cached, a), (streamed, b)))
    assert model_a.data_hash == model_b.data_hash
    case = next(iter(generate_cases(1, 99)))
    assert model_a.predict_case(case) == model_b.predict_case(case)


def test_a_second_retrain_on_the_same_registry_is_refused(tmp_path: Path, fast_settings: Settings) -> None:
    store = _store(tmp_path / "cases.sqlite", 200, 6)
    registry = ModelRegistry(tmp_path / "registry")
    with ModelRegistry(tmp_path / "registry").exclusive():  # what a run in progress holds
        with pytest.raises(RegistryError, match="another retrain is running"):
            retrain(store, registry, config=RetrainConfig(with_index=False), settings=fast_settings)
        env = {**os.environ, **FAST}
        cli = subprocess.run([sys.executable, "-m", "sentencing.cli", "retrain", "--store", str(store.path),
                              "--registry", str(registry.root), "--no-index"], env=env, capture_output=True,
                             text=True, cwd=REPO)
        assert cli.returncode != 0 and "--registry: another retrain is running" in cli.stderr
    assert registry.current_id() is None and not registry.versions()
    assert retrain(store, registry, config=RetrainConfig(with_index=False), settings=fast_settings).promoted


@pytest.mark.parametrize(("option", "value"), [("--evaluate-max", "0"), ("--holdout-share", "1.5")])
def test_retrain_cli_names_a_bad_option(tmp_path: Path, option: str, value: str) -> None:
    store = _store(tmp_path / "cases.sqlite", 20, 3)
    cli = subprocess.run([sys.executable, "-m", "sentencing.cli", "retrain", "--store", str(store.path),
                          "--registry", str(tmp_path / "registry"), option, value], env={**os.environ, **FAST},
                         capture_output=True, text=True, cwd=REPO)
    assert cli.returncode != 0 and f"{option}: " in cli.stderr and "Traceback" not in cli.stderr
    assert not (tmp_path / "registry").exists()  # refused before anything was written


def test_rejected_candidate_keeps_serving_version(tmp_path: Path, fast_settings: Settings) -> None:
    store = _store(tmp_path / "cases.sqlite", 400, 5)
    registry = ModelRegistry(tmp_path / "registry")
    first = retrain(store, registry, config=RetrainConfig(with_index=False), settings=fast_settings)
    store.add(generate_cases(50, 5, start=400))
    impossible = PromotionRule(cail_tolerance=-101.0)  # demands a gain of 101 points: never met
    second = retrain(store, registry, config=RetrainConfig(with_index=False, rule=impossible), settings=fast_settings)
    assert not second.promoted and "CAIL" in second.reason
    assert registry.current_id() == first.version
    assert registry.info(second.version).decision == "rejected"


def _registry_is_consistent(root: Path, serving_before: str | None) -> None:
    registry = ModelRegistry(root)
    registry.sweep()
    assert not list((root / "versions").glob(".tmp-*"))
    current = registry.current_id()
    if serving_before is not None:
        assert current is not None
    if current is not None:
        RangePredictor.load(registry.model_dir(current))  # what serves still loads
    for v in registry.versions():
        RangePredictor.load(registry.model_dir(v.id))
        assert v.decision in ("accepted", "rejected")


@pytest.mark.slow
def test_kill_at_any_point_leaves_registry_consistent(tmp_path: Path) -> None:
    store_path = tmp_path / "cases.sqlite"
    _store(store_path, 400, 21).close()
    root = tmp_path / "registry"
    env = {**os.environ, **FAST, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "sentencing.cli", "retrain", "--store", str(store_path), "--registry", str(root)]
    # The first run completes, so later kills interrupt a run that has something serving.
    subprocess.run(cmd, check=True, env=env, capture_output=True, cwd=REPO)
    serving = ModelRegistry(root).current_id()
    assert serving is not None
    start = 400
    for delay in (0.5, 2.0, 4.0, 6.0, 9.0):
        store = CaseStore(store_path)
        store.add(generate_cases(20, 21, start=start))
        store.close()
        start += 20
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        # Killed (−9), or finished before the kill came; never a failure of its own.
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-3000:]
        _registry_is_consistent(root, serving)
        serving = ModelRegistry(root).current_id()
    # After all the kills a full run on new cases still succeeds.
    store = CaseStore(store_path)
    store.add(generate_cases(20, 21, start=start))
    store.close()
    done = subprocess.run(cmd, env=env, capture_output=True, cwd=REPO, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["version"] is not None
    _registry_is_consistent(root, serving)
