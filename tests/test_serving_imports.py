"""Serving without the ``lightgbm`` package: the native booster binding, and what a server process imports.

Importing ``lightgbm`` imports scikit-learn, pandas, scipy and pyarrow (≈90 MiB of private memory
per server worker, see the module docstring of training.native_booster). The predictor reads the
point booster through LightGBM's C library instead; these tests hold the binding to the package's
own answers, and check in fresh interpreters that loading and predicting leaves those packages out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import training.native_booster as nb
from sentencing.demo_corpus import generate_cases
from training.native_booster import NativeBooster, NativeBoosterError
from training.predictor import ModelLoadError, RangePredictor
from training.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("lightgbm", "sklearn", "pandas", "pyarrow", "scipy")

_PREDICT = """
import json, sys
from pathlib import Path
from sentencing.demo_corpus import generate_cases
from training.predictor import RangePredictor

predictor = RangePredictor.load(Path(sys.argv[1]))
case = next(c for c in generate_cases(60, seed=3) if len(c.defendants) > 1).before_judgment()
predictions = predictor.predict_case(case, explain=True)
print(json.dumps({
    "defendants": len(predictions),
    "contributions": sum(len(p.contributions) for p in predictions),
    "loaded": [m for m in sys.argv[2:] if m in sys.modules],
}))
"""

_SERVE = """
import json, sys
from pathlib import Path
from sentencing.config import Settings
from serve.app import create_app
from serve.recommender import load_bundle

built, home = Path(sys.argv[1]), Path(sys.argv[2])
heavy = sys.argv[3:]
create_app(Settings(home=home, store=built / "cases.sqlite", model_dir=built / "model", index_dir=built / "index"))
after_app = [m for m in heavy if m in sys.modules]
bundle = load_bundle(built / "model", built / "index")  # validates: predicts and searches the probe case
print(json.dumps({"after_create_app": after_app, "after_load_bundle": [m for m in heavy if m in sys.modules],
                  "index_size": bundle.index_size}))
"""


def _run(code: str, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serving-imports") / "model"
    return train(generate_cases(300, seed=11), out,
                 config=TrainConfig(target="residual", n_estimators=40, calibration_folds=2))


@pytest.fixture(scope="module")
def point_file(model_dir: Path) -> Path:
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    return model_dir / manifest["models"]["term_point"]["native"]


# ---------------------------------------------------------------------- a server process's imports

def test_predicting_with_explanations_imports_no_lightgbm_sklearn_pandas_pyarrow_scipy(model_dir: Path) -> None:
    out = _run(_PREDICT, str(model_dir), *HEAVY)
    assert out["defendants"] >= 2 and out["contributions"] > out["defendants"]  # explanations were computed
    assert out["loaded"] == []


@pytest.fixture(scope="module")
def serve_imports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from tests.test_service_recommend import demo_home  # the session's shared demo bundle

    built = demo_home(tmp_path_factory)
    return _run(_SERVE, str(built), str(tmp_path_factory.mktemp("serving-imports-home")), *HEAVY)


def test_service_with_bundle_imports_none_of_them(serve_imports: dict[str, object]) -> None:
    assert serve_imports["index_size"]
    assert serve_imports["after_create_app"] == []
    assert serve_imports["after_load_bundle"] == []


# ---------------------------------------------------------------------- the binding equals the package

def test_native_booster_reads_what_lightgbm_reads(point_file: Path) -> None:
    import lightgbm as lgb

    reference = lgb.Booster(model_file=str(point_file))
    native = NativeBooster(point_file)
    assert (native.n_trees, native.n_features) == (reference.num_trees(), reference.num_feature())
    expected = reference.dump_model()
    expected.pop("pandas_categorical")  # added by the Python package, not in the C dump
    assert native.dump_model() == expected


def test_dump_grows_its_buffer(point_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = NativeBooster(point_file).dump_model()
    monkeypatch.setattr(nb, "_DUMP_BUFFER", 64)  # far below the dump's size: the second call's length is used
    assert NativeBooster(point_file).dump_model() == whole


def test_leaf_index_equals_pred_leaf_with_missing_values(point_file: Path) -> None:
    import lightgbm as lgb

    reference = lgb.Booster(model_file=str(point_file))
    native = NativeBooster(point_file)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, native.n_features)) * 3
    X[::3, ::5] = np.nan
    np.testing.assert_array_equal(native.leaf_index()(X), reference.predict(X, pred_leaf=True, num_threads=1))
    half = native.leaf_index(native.n_trees // 2)
    assert half(X[:2]).shape == (2, native.n_trees // 2)


def test_unreadable_model_files_raise_naming_file_and_call(tmp_path: Path) -> None:
    with pytest.raises(NativeBoosterError, match="missing or not a file"):
        NativeBooster(tmp_path / "absent.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\n", encoding="utf-8")
    with pytest.raises(NativeBoosterError, match=r"LGBM_BoosterCreateFromModelfile \(.*bad\.txt\) failed: .+"):
        NativeBooster(bad)


def test_closed_handles_refuse_calls(point_file: Path) -> None:
    booster = NativeBooster(point_file)
    leaves = booster.leaf_index()
    X = np.zeros((1, booster.n_features))
    leaves.close()
    with pytest.raises(NativeBoosterError, match="closed"):
        leaves(X)
    booster.close()
    booster.close()  # idempotent
    with pytest.raises(NativeBoosterError, match="is closed"):
        booster.dump_model()
    with pytest.raises(NativeBoosterError, match="is closed"):
        booster.leaf_index()


def test_predictor_load_reports_a_broken_native_model(model_dir: Path, point_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    (broken / point_file.relative_to(model_dir)).write_text("tree\nversion=v4\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="native point model unreadable"):
        RangePredictor.load(broken)
    (broken / point_file.relative_to(model_dir)).unlink()
    with pytest.raises(ModelLoadError, match=r"native point model unreadable.*missing or not a file"):
        RangePredictor.load(broken)
    manifest = json.loads((broken / "manifest.json").read_text(encoding="utf-8"))
    multiclass = next(e["native"] for n, e in manifest["models"].items() if n.startswith("form_") and "native" in e)
    manifest["models"]["term_point"]["native"] = multiclass
    (broken / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"native point model unusable for explanations.*single-output"):
        RangePredictor.load(broken)


def test_reference_booster_is_the_served_model(model_dir: Path) -> None:
    predictor = RangePredictor.load(model_dir)
    booster = predictor.lightgbm_booster()
    X = np.vstack([predictor.features(c.before_judgment())[0] for c in generate_cases(30, seed=2) if c.defendants])
    explainer = predictor._explainer
    raw = booster.predict(X, raw_score=True, num_threads=1)
    np.testing.assert_allclose(explainer.grouped(X).sum(axis=1) + explainer.bias, raw, rtol=0, atol=1e-9)
