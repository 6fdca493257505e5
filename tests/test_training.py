"""Training, the model directory, ONNX serving, calibration and the train/evaluate/predict commands.

One small model is trained once per module on the synthetic demo corpus (real LightGBM, real ONNX
export, real onnxruntime); the ONNX-equality test runs it on the real judgments' features.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from sentencing.case import (
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    Court,
    CourtLevel,
    Defendant,
    Measure,
    Quantities,
    Role,
)
from sentencing.cli import main as cli_main
from sentencing.demo_corpus import generate_cases
from sentencing.guideline import calculate
from sentencing.sentence import Sentence, SentenceForm, SentenceKind
from training.calibration import CalibrationError, ConformalCalibration
from training.models import (
    FORMS,
    FormClassifier,
    LegalLimits,
    RangeModel,
    choose_guideline_weight,
    draw_toward_guideline,
    share_at_most,
)
from training.predictor import (
    ModelLoadError,
    RangePredictor,
    bounds_warnings,
    defer_to_guideline_life,
    enforce_role_consistency,
    no_term_by_law,
    role_violations,
    statutory_bounds,
)
from training.train import TrainConfig, train

N_TRAIN = 500


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    return train(generate_cases(N_TRAIN, seed=11), out)


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> RangePredictor:
    return RangePredictor.load(model_dir)


def _theft(amount: float, codes: tuple[CircumstanceCode, ...] = (), *, n: int = 1) -> Case:
    roles = [Role.SOLE] if n == 1 else [Role.PRINCIPAL] + [Role.ACCESSORY] * (n - 1)
    return Case(
        id=f"theft-{amount}-{n}", province="JS",
        court=Court(name="江苏省南京市玄武区人民法院", province="JS", level=CourtLevel.BASIC),
        defendants=[
            Defendant(name=f"被告人{i}", charges=[Charge(name="盗窃")], role=role,
                      circumstances=[Circumstance(code=c) for c in codes],
                      quantities=Quantities(amount_yuan=Measure(value=amount)), age=35)
            for i, role in enumerate(roles)
        ],
    )


def test_model_directory_is_complete(model_dir: Path, predictor: RangePredictor) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["models"].values():
        if "onnx" in entry:
            assert (model_dir / entry["onnx"]).is_file() and (model_dir / entry["native"]).is_file()
    for name in ("feature_spec.json", "calibration.json", "baselines.json", "MODEL_CARD.md"):
        assert (model_dir / name).is_file(), name
    assert len(manifest["data_hash"]) == 64
    assert manifest["training"]["synthetic_share"] == 1.0
    assert "synthetic" in (model_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert predictor.version == manifest["version"] and predictor.ruleset_version == manifest["ruleset_version"]
    assert not list(model_dir.parent.glob(".model.*")), "temporary directories left behind"


def test_prediction_contract(predictor: RangePredictor) -> None:
    case = _theft(30_000, (CircumstanceCode.CONFESSION,), n=3)
    preds = predictor.predict_case(case)
    assert [p.name for p in preds] == [d.name for d in case.defendants]
    for p in preds:
        assert p.range.confidence == pytest.approx(0.8)
        assert 0 <= p.range.low_months <= p.range.point_months <= p.range.high_months
        assert sum(p.form_probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert set(p.form_probabilities) == {f.value for f in SentenceForm}
        assert p.guideline is not None
        # Contributions: the base plus every group's months add up to the point estimate.
        assert p.contributions[0].group == "base"
        total = sum(c.months for c in p.contributions)
        assert total == pytest.approx(p.range.point_months, abs=0.1 * len(p.contributions) + 0.5)
        assert all(c.label for c in p.contributions)
    # The accessories never sit above their principal.
    for p in preds[1:]:
        assert p.range.high_months <= preds[0].range.high_months + 1e-6
        assert p.range.point_months <= preds[0].range.point_months + 1e-6


def test_more_money_never_lowers_and_surrender_never_raises(predictor: RangePredictor) -> None:
    points = []
    for amount in (2_000, 8_000, 40_000, 150_000, 600_000):
        r = predictor.predict_case(_theft(amount))[0].range
        points.append((r.low_months, r.point_months, r.high_months))
    for a, b in itertools.pairwise(points):
        assert all(y >= x - 1e-6 for x, y in zip(a, b, strict=True)), points
    plain = predictor.predict_case(_theft(40_000))[0].range
    surrendered = predictor.predict_case(_theft(40_000, (CircumstanceCode.SURRENDER,)))[0].range
    assert surrendered.point_months <= plain.point_months + 1e-6
    assert surrendered.high_months <= plain.high_months + 1e-6


def _seller(grams: float, *codes: CircumstanceCode, role: Role = Role.SOLE) -> Defendant:
    return Defendant(name="刘某", charges=[Charge(name="贩卖毒品")], role=role,
                     circumstances=[Circumstance(code=c) for c in codes],
                     quantities=Quantities(drug_grams={"甲基苯丙胺": Measure(value=grams)}))


def test_statutory_bounds_are_those_the_guideline_is_sure_of() -> None:
    # 12.5 g of methamphetamine: 刑法第347条 seven to fifteen years; 坦白 is no ground to go below seven.
    assert statutory_bounds(calculate(_seller(12.5, CircumstanceCode.CONFESSION))) == (84, 180)
    # 自首 (可以减轻) or an accessory's role (应当从轻、减轻) lift the floor, never the ceiling.
    assert statutory_bounds(calculate(_seller(12.5, CircumstanceCode.SURRENDER))) == (None, 180)
    assert statutory_bounds(calculate(_seller(12.5, role=Role.ACCESSORY))) == (None, 180)
    # No weight known: the tier is a guess, so is every bound; the top tier reaches death: no ceiling.
    assert statutory_bounds(calculate(Defendant(name="刘某", charges=[Charge(name="贩卖毒品")]))) == (None, None)
    assert statutory_bounds(calculate(_seller(80.0))) == (180, None)
    assert statutory_bounds(None) == (None, None)
    # 故意杀人: whether 情节较轻 (three to ten years) applies is no fact the guideline reads: no bound is sure.
    killer = Defendant(name="赵某", charges=[Charge(name="故意杀人")])
    assert calculate(killer).statutory.tier_label == "故意杀人的"
    assert statutory_bounds(calculate(killer)) == (None, None)
    # 组织卖淫: priced in its basic tier (five to ten years) with 情节严重 (ten or more) open: the floor is
    # sure whichever applies, the ceiling is not.
    pimp = calculate(Defendant(name="钱某", charges=[Charge(name="组织卖淫")]))
    assert pimp.statutory.min_months == 60 and statutory_bounds(pimp) == (60, None)
    (below,) = bounds_warnings(18.6, 124.2, pimp, point=44.1)
    assert "建议刑期（三年八个月）低于法定刑幅度下限（五年）" in below
    g = calculate(_seller(12.5, CircumstanceCode.CONFESSION))
    low, high = bounds_warnings(54.3, 190.0, g)
    assert "四年六个月" in low and "七年" in low and "刑法第63条" in low
    assert "十五年" in high and "法定最高刑" in high
    assert bounds_warnings(84.0, 180.0, g) == [] and bounds_warnings(83.6, 180.4, g) == []
    # A low under one month is said as such (it once raised: a duration is at least one month).
    (under,) = bounds_warnings(0.3, 100.0, g)
    assert "0.3个月" in under and "七年" in under


def test_a_guideline_of_life_prevails_over_a_model_predicting_a_term() -> None:
    life = calculate(_seller(7427.8))
    term = calculate(_seller(12.5))
    assert life.kind is SentenceKind.LIFE and term.kind is not SentenceKind.LIFE
    # forms: non_custodial, probation, custody, life, death
    proba = np.array([[0.0, 0.0, 0.80, 0.02, 0.18],   # life by the guideline, a term by the model: deferred
                      [0.0, 0.0, 0.45, 0.30, 0.25],   # a term likeliest though heavy forms sum to 0.55: deferred
                      [0.0, 0.0, 0.30, 0.20, 0.50],   # the model says death: kept
                      [0.0, 0.0, 0.95, 0.05, 0.00]])  # a fixed-term guideline: kept
    before = proba.copy()
    changed, reported = defer_to_guideline_life(proba, [life, life, life, term])
    assert changed == {0: pytest.approx(0.20), 1: pytest.approx(0.55)} and reported == []
    assert np.allclose(proba[0], [0.0, 0.0, 0.32, 0.608, 0.072]) and np.argmax(proba[0]) == 3
    assert np.argmax(proba[1]) == 3 and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(proba[2:], before[2:])
    # 诈骗 of 7 million yuan: the guideline's 无期徒刑 comes from a derived amount increment in a tier that
    # begins at ten years; the model's term is kept and the disagreement reported.
    fraud = calculate(Defendant(name="甲", charges=[Charge(name="诈骗")],
                                quantities=Quantities(amount_yuan=Measure(value=7_049_800))))
    assert fraud.kind is SentenceKind.LIFE and fraud.statutory.min_months == 120
    row = np.array([[0.0, 0.0, 0.95, 0.05, 0.0]])
    assert defer_to_guideline_life(row, [fraud]) == ({}, [0]) and row[0, 2] == 0.95
    # Two killed in a 故意杀人 (a tier that also begins at ten years): the guideline's 无期徒刑 rests on the
    # death increment, which courts follow; deferred like the drug tier's.
    murder = calculate(Defendant(name="甲", charges=[Charge(name="故意杀人")],
                                 quantities=Quantities(deaths=Measure(value=2))))
    assert murder.kind is SentenceKind.LIFE and murder.statutory.min_months == 120
    row = np.array([[0.0, 0.0, 0.99, 0.01, 0.0]])
    assert defer_to_guideline_life(row, [murder]) == ({0: pytest.approx(0.01)}, []) and np.argmax(row[0]) == 3


def _kidnapper(*codes: CircumstanceCode, charges: tuple[str, ...] = ("绑架",)) -> Case:
    return Case(id=f"kidnap-{'-'.join(codes)}-{len(charges)}", province="JS", defendants=[
        Defendant(name="王某", charges=[Charge(name=c) for c in charges], age=30,
                  circumstances=[Circumstance(code=c) for c in codes],
                  quantities=Quantities(deaths=Measure(value=1)))])


def test_no_term_where_the_tier_allows_none(predictor: RangePredictor) -> None:
    """绑架 that kills the hostage (刑法第239条第2款): 无期徒刑或者死刑. Without a ground of 减轻 every term
    form's probability goes to life, whatever a model that saw few such defendants says; death keeps
    the model's. With 自首 (可以减轻) the term stays possible."""
    killed = calculate(_kidnapper().defendants[0])
    proba = np.array([[0.1, 0.2, 0.6, 0.07, 0.03]])
    assert no_term_by_law(proba, [killed]) == [0]
    assert np.allclose(proba[0], [0.0, 0.0, 0.0, 0.97, 0.03])
    # a tier of 死刑 alone (劫持航空器 that kills, 刑法第121条): every other form's probability to death
    hijack = calculate(_kidnapper(charges=("劫持航空器",)).defendants[0])
    proba = np.array([[0.1, 0.2, 0.6, 0.07, 0.03]])
    assert hijack.kind is SentenceKind.DEATH and no_term_by_law(proba, [hijack]) == [0]
    assert np.allclose(proba[0], [0.0, 0.0, 0.0, 0.0, 1.0])
    (h,) = predictor.predict_case(_kidnapper(charges=("劫持航空器",)))
    assert h.form is SentenceForm.DEATH and h.range.point_months is None
    assert any("不得判处有期徒刑或者无期徒刑" in w for w in h.warnings)
    (p,) = predictor.predict_case(_kidnapper())
    assert p.form in (SentenceForm.LIFE, SentenceForm.DEATH) and p.range.point_months is None
    assert p.form_probabilities["custody"] == p.form_probabilities["probation"] == 0.0
    assert any("不得判处有期徒刑" in w for w in p.warnings)
    (m,) = predictor.predict_case(_kidnapper(CircumstanceCode.SURRENDER))
    assert m.guideline.kind is SentenceKind.FIXED_TERM and not any("不得判处有期徒刑" in w for w in m.warnings)
    # 减轻 goes to the tier below (第63条), 绑架's basic tier of ten years or more: a lower range is said to be
    assert statutory_bounds(m.guideline) == (120, None)
    below = m.range.low_months < 119.5
    assert any("减轻处罚只能在下一个量刑幅度内判处" in w for w in m.warnings) == below
    assert bounds_warnings(100.0, 170.0, m.guideline, point=140.0) != []
    assert bounds_warnings(121.0, 170.0, m.guideline, point=140.0) == []
    # beside another charge the death may be that charge's: the tier is not forced, and it is said
    (o,) = predictor.predict_case(_kidnapper(charges=("故意杀人", "绑架")))
    assert any("可能由其他犯罪造成" in w for w in o.warnings)
    assert not any("不得判处有期徒刑" in w for w in o.warnings)


def test_a_range_leaving_the_statutory_tier_says_so(predictor: RangePredictor) -> None:
    checked = 0
    for grams in (10.5, 12.5, 20.0, 45.0, 60.0, 200.0):
        for codes in ((), (CircumstanceCode.CONFESSION,), (CircumstanceCode.SURRENDER,)):
            case = Case(id=f"drug-{grams}", province="ZJ", defendants=[_seller(grams, *codes)])
            (p,) = predictor.predict_case(case)
            floor, ceiling = statutory_bounds(p.guideline)
            r = p.range
            if r.low_months is None:
                continue
            checked += 1
            below = floor is not None and r.low_months < floor - 0.5
            above = ceiling is not None and r.high_months > ceiling + 0.5
            assert any("低于法定刑幅度下限" in w for w in p.warnings) == below, (grams, codes, r, floor)
            assert any("高于法定刑幅度上限" in w for w in p.warnings) == above, (grams, codes, r, ceiling)
    assert checked >= 12


def test_a_recidivist_is_never_given_probation(predictor: RangePredictor) -> None:
    """刑法第74条: 累犯不适用缓刑. Without the circumstance the same small theft is likely suspended."""
    plain = _theft(3000)
    recidivist = _theft(3000, (CircumstanceCode.RECIDIVIST,))
    assert predictor.predict_case(plain)[0].form_probabilities["probation"] > 0.05
    (p,) = predictor.predict_case(recidivist)
    assert p.form_probabilities["probation"] == 0.0 and p.form is SentenceForm.CUSTODY
    assert abs(sum(p.form_probabilities.values()) - 1.0) < 1e-9
    X, _, _ = predictor.features(recidivist)
    _, proba = predictor.predict_matrix(X)
    assert proba[0][1] == 0.0 and abs(proba[0].sum() - 1.0) < 1e-9
    # Nor a range that starts above three years (刑法第72条), recidivist or not.
    for amount in (2_000, 40_000, 600_000, 3_000_000):
        (q,) = predictor.predict_case(_theft(amount))
        if q.range.low_months is not None and q.range.low_months > 36.5:
            assert q.form_probabilities["probation"] == 0.0, (amount, q.range)
    (big,) = predictor.predict_case(_theft(3_000_000))
    assert big.range.low_months is None or big.range.low_months > 36.5


def test_a_life_level_guideline_gives_the_heaviest_terms_not_a_few_months(predictor: RangePredictor) -> None:
    """3,000,000 yuan stolen: the guideline says 无期徒刑. Its term columns once read as "no guideline"
    (NaN, the light unknown charges) and the range came out at 2–23 months; and no range of one
    crime reaches past 15 years (刑法第45条), nor of several past 25 (第69条)."""
    (q,) = predictor.predict_case(_theft(3_000_000))
    assert q.guideline is not None and q.guideline.kind.value == "life"
    assert q.range.point_months is None or (q.range.point_months >= 120 and q.range.high_months <= 180)
    for amount in (40_000, 600_000, 1_500_000, 30_000_000):
        r = predictor.predict_case(_theft(amount))[0].range
        assert r.high_months is None or r.high_months <= 180, (amount, r)


def test_the_law_s_limits_on_terms_and_forms() -> None:
    from features.spec import build_spec
    from sentencing.charges import default_catalogue

    spec = build_spec(default_catalogue())
    limits = LegalLimits(spec, default_catalogue())
    rows = [  # (charges, charges_count, recidivist, juvenile, low/point/high months)
        (("盗窃",), 1, 0, 0, (100.0, 200.0, 400.0)),  # one crime: 15 years at most (刑法第45条); no death;
        # and a range starting above three years: no probation
        (("危险驾驶",), 1, 0, 0, (1.0, 2.0, 3.0)),  # 拘役 at most: neither life nor death
        (("故意杀人",), 1, 0, 0, (12.0, 30.0, 40.0)),  # every form
        (("故意杀人",), 1, 0, 1, (12.0, 30.0, 40.0)),  # a juvenile: no death (第49条)
        (("盗窃",), 1, 1, 0, (12.0, 20.0, 30.0)),  # 累犯: no probation (第74条)
        (("盗窃", "诈骗"), 2, 0, 0, (36.4, 280.0, 320.0)),  # several crimes: 25 years (第69条)
        (("盗窃",), 1, 0, 0, (37.0, 40.0, 50.0)),  # a range above three years: no probation (第72条)
        (("其他",), 1, 0, 0, (12.0, 30.0, 40.0)),  # a charge outside the catalogue: every form
        ((), 0, 0, 0, (12.0, 30.0, 40.0)),  # no charge known: every form
    ]
    X = np.zeros((len(rows), spec.n_features))
    months = np.array([m for *_, m in rows])
    for i, (charges, count, recidivist, juvenile, _) in enumerate(rows):
        for c in charges:
            X[i, spec.index(f"charge_{c}")] = 1.0
        X[i, spec.index("charges_count")] = count
        X[i, spec.index("circ_recidivist")] = recidivist
        X[i, spec.index("circ_juvenile")] = juvenile
    proba = np.tile([0.1, 0.1, 0.5, 0.2, 0.1], (len(rows), 1))  # non_custodial, probation, custody, life, death
    limits.apply(months, proba, X, 0.8)
    assert months[0].tolist() == [100.0, 180.0, 180.0] and months[5].tolist() == [36.4, 280.0, 300.0]
    assert months[1].tolist() == [1.0, 2.0, 3.0]
    # several crimes, 36.4 to 300 months: the range leaves about 10% of its terms at three years or less,
    # so probation keeps that share of the term forms' 0.6 (share_at_most)
    kept = share_at_most(36.5, 36.4, 280.0, 300.0, 0.1) * 0.6
    assert 0.06 < kept < 0.061
    assert np.allclose(proba, [
        [0.1, 0.0, 0.6, 0.3, 0.0], [0.1, 0.1, 0.8, 0.0, 0.0], [0.1, 0.1, 0.5, 0.2, 0.1],
        [0.1, 0.1, 0.5, 0.3, 0.0], [0.1, 0.0, 0.6, 0.3, 0.0], [0.1, kept, 0.6 - kept, 0.3, 0.0],
        [0.1, 0.0, 0.6, 0.3, 0.0], [0.1, 0.1, 0.5, 0.2, 0.1], [0.1, 0.1, 0.5, 0.2, 0.1]])
    # 75 or older (第49条): no death, unless a death was caused (its exception, 以特别残忍手段致人死亡);
    # deaths unknown (NaN) or none: no death.
    X = np.zeros((3, spec.n_features))
    X[:, spec.index("charge_故意杀人")] = X[:, spec.index("charges_count")] = X[:, spec.index("circ_elderly")] = 1.0
    X[:, spec.index("deaths")] = [np.nan, 0.0, 1.0]
    proba = np.tile([0.1, 0.1, 0.5, 0.2, 0.1], (3, 1))
    limits.apply(np.array([[12.0, 30.0, 40.0]] * 3), proba, X, 0.8)
    assert np.allclose(proba, [[0.1, 0.1, 0.5, 0.3, 0.0], [0.1, 0.1, 0.5, 0.3, 0.0], [0.1, 0.1, 0.5, 0.2, 0.1]])
    # Without the spec's catalogue (another rule set): the limits by charge go, the others stay.
    X = np.zeros((3, spec.n_features))
    X[:, spec.index("charge_盗窃")] = X[:, spec.index("charges_count")] = 1.0
    X[1, spec.index("circ_recidivist")] = X[2, spec.index("circ_juvenile")] = 1.0
    months = np.array([[100.0, 200.0, 400.0], [12.0, 20.0, 30.0], [12.0, 20.0, 30.0]])
    proba = np.tile([0.1, 0.1, 0.5, 0.2, 0.1], (3, 1))
    LegalLimits(spec, None).apply(months, proba, X, 0.8)
    assert months[0].tolist() == [100.0, 180.0, 180.0]
    assert np.allclose(proba, [[0.1, 0.0, 0.6, 0.2, 0.1], [0.1, 0.0, 0.6, 0.2, 0.1], [0.1, 0.1, 0.5, 0.3, 0.0]])


def test_unknown_charge_warns_instead_of_crashing(predictor: RangePredictor) -> None:
    case = Case(id="x", defendants=[Defendant(name="某", charges=[Charge(name="穿越时空")])])
    (p,) = predictor.predict_case(case)
    assert any("穿越时空" in w for w in p.warnings)
    assert predictor.predict_case(Case(id="empty")) == []


def test_calibration_holds_on_unseen_synthetic_cases(predictor: RangePredictor) -> None:
    inside = total = 0
    for case in generate_cases(300, seed=12345):
        truth = [d.sentence for d in case.defendants]
        for p, s in zip(predictor.predict_case(case.before_judgment()), truth, strict=True):
            if s is None or s.term_months < 0 or p.range.low_months is None:
                continue
            total += 1
            inside += p.range.low_months - 0.5 <= s.term_months <= p.range.high_months + 0.5
    assert total > 200
    assert 0.70 <= inside / total <= 0.92, inside / total


@pytest.mark.real_data
def test_onnx_matches_native_lightgbm_on_real_judgments(shared_data: Path, predictor: RangePredictor,
                                                        model_dir: Path) -> None:
    import lightgbm as lgb

    from sentencing.importers import read_cases

    cases = list(read_cases("judge", [shared_data / "judge" / "judgments.jsonl"], errors=[]))
    cases += list(read_cases("lawbench", [shared_data / "lawbench" / "term_prediction.jsonl"], errors=[]))
    X = np.vstack([predictor.features(c.before_judgment())[0] for c in cases if c.defendants])
    assert len(X) > 500
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    for name, entry in manifest["models"].items():
        if "onnx" not in entry:
            continue
        native = lgb.Booster(model_file=str(model_dir / entry["native"])).predict(X)
        onnx = predictor.onnx.predict(X.astype(np.float32))[name]
        np.testing.assert_allclose(onnx, np.asarray(native).reshape(onnx.shape), atol=1e-4, err_msg=name)


def test_load_errors_are_clear(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        RangePredictor.load(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=r"manifest\.json"):
        RangePredictor.load(empty)

    def broken(edit: str) -> Path:
        d = tmp_path / edit
        shutil.copytree(model_dir, d)
        if edit == "ruleset":
            m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
            m["ruleset_version"] = "1999-01"
            (d / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
        elif edit == "onnx":
            (d / "models" / "term_point.onnx").write_bytes(b"not a model")
        elif edit == "spec":
            (d / "feature_spec.json").unlink()
        elif edit == "json":
            (d / "manifest.json").write_text("{", encoding="utf-8")
        elif edit.startswith("weight"):
            m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
            if edit == "weight-absent":  # a model written before the setting existed
                del m["range"]["guideline_weight"]
            else:
                m["range"]["guideline_weight"] = {"weight-big": 1.5, "weight-text": "0.5"}[edit]
            (d / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
        return d

    with pytest.raises(ModelLoadError, match="rule set"):
        RangePredictor.load(broken("ruleset"))
    with pytest.raises(ModelLoadError, match=r"term_point\.onnx"):
        RangePredictor.load(broken("onnx"))
    with pytest.raises(ModelLoadError, match=r"feature_spec\.json"):
        RangePredictor.load(broken("spec"))
    with pytest.raises(ModelLoadError, match="JSON"):
        RangePredictor.load(broken("json"))
    for edit in ("weight-big", "weight-text"):
        with pytest.raises(ModelLoadError, match=r"range\.guideline_weight must be a number from 0 to 1"):
            RangePredictor.load(broken(edit))
    assert RangePredictor.load(broken("weight-absent"))._guideline_weight == 0.0


def test_failed_training_keeps_the_stored_model(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    before = (target / "manifest.json").read_bytes()
    unsentenced = [c.before_judgment() for c in generate_cases(5, seed=3)]
    with pytest.raises(ValueError, match="no sentenced defendant"):
        train(unsentenced, target)
    assert (target / "manifest.json").read_bytes() == before
    assert RangePredictor.load(target).version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_role_consistency_is_enforced_and_counted() -> None:
    case = _theft(10_000, n=2)
    months = np.array([[6.0, 10.0, 14.0], [8.0, 12.0, 13.0]])
    resolve = lambda name: (name, None)  # noqa: E731
    assert role_violations(case, months, resolve) == [(1, 0)]
    assert enforce_role_consistency(case, months, resolve) == [1]
    np.testing.assert_array_equal(months[1], [6.0, 10.0, 13.0])
    # A recidivist accessory is not comparable with a principal who is not one.
    recidivist = case.model_copy(deep=True)
    recidivist.defendants[1].circumstances.append(Circumstance(code=CircumstanceCode.RECIDIVIST))
    assert role_violations(recidivist, np.array([[6.0, 10.0, 14.0], [8.0, 12.0, 13.0]]), resolve) == []


def test_draw_toward_guideline_and_its_weight() -> None:
    q = np.log1p(np.array([[6.0, 10.0, 20.0], [6.0, 10.0, 20.0], [1.0, 2.0, 3.0]]))
    guide = np.array([np.log1p(30.0), np.nan, np.log1p(2.0)])
    drawn = draw_toward_guideline(q, guide, 0.25)
    np.testing.assert_allclose(drawn[0], 0.75 * q[0] + 0.25 * guide[0], rtol=1e-15)
    np.testing.assert_array_equal(drawn[1], q[1])  # no guideline: the model's own range
    assert np.all(np.diff(drawn, axis=1) >= 0)
    np.testing.assert_array_equal(draw_toward_guideline(q, guide, 0.0), q)
    np.testing.assert_allclose(draw_toward_guideline(q, guide, 1.0)[0], guide[0], rtol=1e-15)
    # more money, higher guideline and model alike: every bound stays ordered across rows at any weight
    more = draw_toward_guideline(q[:1] + 0.5, guide[:1] + 0.1, 0.6)
    assert np.all(more >= draw_toward_guideline(q[:1], guide[:1], 0.6))

    # the model's points err by +2 on the log scale, the guideline's by -2: only halfway is exact
    rng = np.random.default_rng(0)
    y = np.log1p(rng.integers(24, 240, size=200).astype(float))
    model = np.column_stack([y + 1.5, y + 2.0, y + 2.5])
    weight, scores = choose_guideline_weight(model, y - 2.0, y)
    assert weight == 0.5 and scores[0.5] == 100.0 and scores[0.0] < 100.0
    assert set(scores) == {w / 10 for w in range(11)}
    # a guideline no better than the model: ties go to the model's own point
    weight, _ = choose_guideline_weight(model[:, [1, 1, 1]] - 0.5, y + 3.0, y, weights=(0.0, 0.01))
    assert weight == 0.0


def test_a_term_label_of_zero_is_a_known_non_custodial_form() -> None:
    from sentencing.sentence import sentence_from_term_months
    from training.dataset import form_label
    from training.models import TERM_UNKNOWN_FORM

    case = Case(id="lb", source="lawbench", defendants=[Defendant(name="甲", charges=[Charge(name="盗窃")])])
    assert form_label(case, sentence_from_term_months(0).form, 0) == SentenceForm.NON_CUSTODIAL.value
    # months alone do not say custody or probation
    assert form_label(case, sentence_from_term_months(8).form, 8) == TERM_UNKNOWN_FORM
    assert form_label(case, sentence_from_term_months(-1).form, -1) == SentenceForm.LIFE.value
    judged = case.model_copy(update={"source": "judge"})
    assert form_label(judged, SentenceForm.PROBATION, 8) == SentenceForm.PROBATION.value


def test_conformal_margins_by_group() -> None:
    from training.calibration import MIN_GROUP

    rng = np.random.default_rng(1)
    n = 3 * MIN_GROUP
    y = rng.uniform(1, 4, size=n)
    groups: list[str | None] = ["wide"] * MIN_GROUP + ["narrow"] * MIN_GROUP + ["few"] * 10 + [None] * (MIN_GROUP - 10)
    spread = np.where(np.array([g == "wide" for g in groups]), 1.0, 0.1)
    low, high = y - rng.uniform(-1, 1, size=n) * spread - 0.05, y + rng.uniform(-1, 1, size=n) * spread + 0.05
    cal = ConformalCalibration.fit(low, high, y, confidence=0.8, groups=groups)
    assert sorted(cal.group_scores) == ["narrow", "wide"]  # "few" has under MIN_GROUP scores
    every = ConformalCalibration.fit(low, high, y, confidence=0.8)
    assert cal.margin() == every.margin() and cal.scores == every.scores
    assert cal.margin(group="wide") > cal.margin() > cal.margin(group="narrow")
    assert cal.margin(group="few") == cal.margin(group=None) == cal.margin()
    wide = [s for s, g in zip(np.maximum(low - y, y - high), groups, strict=True) if g == "wide"]
    assert cal.margin(group="wide") == sorted(wide)[math.ceil(0.8 * (MIN_GROUP + 1)) - 1]
    # each group's range covers about 80% of its own defendants
    lo, hi = cal.apply(low, high, groups=groups)
    for g in ("wide", "narrow"):
        inside = [lo[i] <= y[i] <= hi[i] for i in range(n) if groups[i] == g]
        assert 0.8 <= np.mean(inside) <= 0.9
    # rows: the same numbers as the plain-float serving path with each row's margin
    logs = np.sort(np.column_stack([low, y, high]), axis=1)
    months = cal.to_months(logs, groups=groups)
    margins = cal.margins()
    rows = [cal.calibrate_logs(*row, margins.get(g, margins[None]))
            for row, g in zip(logs.tolist(), groups, strict=True)]
    assert np.expm1(np.array(rows)).tobytes() == months.tobytes()
    with pytest.raises(CalibrationError, match="groups"):
        ConformalCalibration.fit(low, high, y, confidence=0.8, groups=groups[:-1])


def test_conformal_margin() -> None:
    y = np.linspace(0, 1, 99)
    cal = ConformalCalibration.fit(np.zeros(99), np.zeros(99), y, confidence=0.8)
    # Scores are y itself; the ⌈0.8·100⌉ = 80th smallest.
    assert cal.margin() == pytest.approx(y[79])
    lo, hi = cal.apply(np.array([1.0]), np.array([2.0]))
    assert lo[0] == pytest.approx(max(1.0 - y[79], 0.0)) and hi[0] == pytest.approx(2.0 + y[79])
    with pytest.raises(CalibrationError, match="at least 10"):
        ConformalCalibration.fit(np.zeros(3), np.zeros(3), np.zeros(3), confidence=0.8)
    with pytest.raises(CalibrationError, match="between 0 and 1"):
        cal.margin(1.5)


def test_probation_takes_no_more_than_the_range_leaves_to_three_years_or_less() -> None:
    """第72条: only a term of three years or less can be suspended. A range of 18.6 to 124 months around 44
    (组织卖淫 from a model trained on the real data, probation 0.61) leaves about 40% of its terms there."""
    assert share_at_most(36.5, 18.6, 44.1, 124.2, 0.1) == pytest.approx(0.41, abs=0.01)
    assert share_at_most(36.5, 6.0, 12.0, 20.0, 0.1) == 1.0 and share_at_most(36.5, 40.0, 50.0, 60.0, 0.1) == 0.0
    assert share_at_most(36.5, 10.0, 36.5, 80.0, 0.1) == pytest.approx(0.5)
    assert share_at_most(36.5, 30.0, 30.0, 30.0, 0.1) == 1.0  # a range of one point, below the limit
    from features.spec import build_spec
    from sentencing.charges import default_catalogue

    spec = build_spec(default_catalogue())
    X = np.zeros((2, spec.n_features))
    X[:, spec.index("charge_组织卖淫")] = X[:, spec.index("charges_count")] = 1.0
    months = np.array([[18.6, 44.1, 124.2], [6.0, 12.0, 20.0]])
    proba = np.tile([0.0, 0.61, 0.39, 0.0, 0.0], (2, 1))
    LegalLimits(spec, default_catalogue()).apply(months, proba, X, 0.8)
    allowed = share_at_most(36.5, 18.6, 44.1, 124.2, 0.1)
    assert np.allclose(proba[0], [0.0, allowed, 1.0 - allowed, 0.0, 0.0]) and np.argmax(proba[0]) == 2
    assert np.allclose(proba[1], [0.0, 0.61, 0.39, 0.0, 0.0])  # all of the range is three years or less


def test_a_source_that_tells_only_its_non_custodial_forms_does_not_bias_the_form() -> None:
    """CAIL-style labels say a form only when the term is 0 (non-custodial). Learned in the suspended-or-
    not stage, that taught the classifier that every defendant like theirs is non-custodial."""
    rng = np.random.default_rng(0)
    n = 400
    cail = np.arange(n) >= n // 2  # the second half: a source without court or province (column 0)
    X = np.column_stack([cail.astype(float), rng.normal(size=n)])
    labels = np.where(rng.random(n) < 0.7, "custody", "probation").astype(object)
    labels[cail] = np.where(rng.random(cail.sum()) < 0.15, "non_custodial", "term")
    proba = FormClassifier().fit(X, labels.tolist()).predict_proba(X)
    non_custodial = proba[:, FORMS.index("non_custodial")]
    assert non_custodial[cail].mean() == pytest.approx(np.mean(labels[cail] == "non_custodial"), abs=0.05)
    assert non_custodial[~cail].mean() < 0.05


def test_a_non_custodial_form_says_its_range_is_a_term_s(tmp_path: Path) -> None:
    """Where the likeliest form is non-custodial (免予刑事处罚, 单处罚金), the range shown is the term a
    sentence of 有期徒刑 or 拘役 would be, and the prediction says so. A model learns it here from demo
    cases whose forgiven defendants (谅解) were all exempted from punishment."""
    def exempt_if_forgiven(case: Case) -> Case:
        return case.model_copy(update={"defendants": [
            d.model_copy(update={"sentence": Sentence(kind=SentenceKind.EXEMPT)})
            if CircumstanceCode.FORGIVENESS in d.circumstance_codes else d for d in case.defendants]})

    predictor = RangePredictor.load(train(map(exempt_if_forgiven, generate_cases(300, seed=5)), tmp_path / "m"))
    (forgiven,) = predictor.predict_case(_theft(3000, (CircumstanceCode.FORGIVENESS,)))
    assert forgiven.form is SentenceForm.NON_CUSTODIAL and forgiven.range.point_months is not None
    assert any(w.startswith("学习模型认为最可能的刑罚为非监禁刑") for w in forgiven.warnings)
    (plain,) = predictor.predict_case(_theft(3000))
    assert plain.form is not SentenceForm.NON_CUSTODIAL
    assert not any("非监禁刑" in w for w in plain.warnings)


def test_model_classes_validate_inputs() -> None:
    X = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(ValueError, match="finite"):
        RangeModel(target="log").fit(X, np.full(50, np.nan))
    with pytest.raises(ValueError, match="unknown form labels"):
        FormClassifier().fit(X, ["custody"] * 49 + ["bogus"])
    with pytest.raises(ValueError, match="suspended or not"):
        FormClassifier().fit(X, ["term"] * 50)
    # CAIL-style "term" labels only feed the severity stage.
    labels = ["term"] * 20 + ["custody"] * 15 + ["probation"] * 15
    proba = FormClassifier().fit(X, labels).predict_proba(X)
    assert proba.shape == (50, 5) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.all(proba[:, 3:] == 0.0)  # no life or death in training


@pytest.mark.slow
def test_train_evaluate_predict_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sentencing.store import CaseStore

    with CaseStore(tmp_path / "cases.sqlite") as store:
        store.add(generate_cases(150, seed=5))
    held = tmp_path / "held.jsonl"
    held.write_text("\n".join(c.to_json_line() for c in generate_cases(25, seed=6)) + "\n", encoding="utf-8")
    out = tmp_path / "m"
    assert cli_main(["train", "--store", str(tmp_path / "cases.sqlite"), "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli_main(["evaluate", "--model", str(out), "--format", "cases", str(held), "--json",
                     "--report", str(tmp_path / "report")]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("n_defendants", "cail_score", "mae_months", "coverage", "mean_width_months", "custody_accuracy"):
        assert isinstance(summary[key], (int, float)) and not math.isnan(summary[key]), key
    assert {"guideline", "charge_median"} <= set(summary["baselines"])
    assert (tmp_path / "report" / "REPORT.md").is_file() and (tmp_path / "report" / "calibration.png").is_file()
    assert cli_main(["predict", "--model", str(out), "--format", "cases", str(held)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 25
    first = lines[0]["defendants"][0]
    assert set(first) >= {"name", "range", "form", "form_probabilities"}
    assert set(first["range"]) == {"low_months", "point_months", "high_months", "confidence"}
    with pytest.raises(SystemExit, match="not a model directory"):
        cli_main(["predict", "--model", str(tmp_path), "--format", "cases", str(held)])
    # the knobs of this session's range model, from the command line
    fixed = tmp_path / "fixed"
    assert cli_main(["train", "--store", str(tmp_path / "cases.sqlite"), "--out", str(fixed),
                     "--guideline-weight", "0.25", "--one-margin"]) == 0
    manifest = json.loads((fixed / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["range"]["guideline_weight"] == 0.25 and manifest["config"]["calibrate_by_family"] is False
    assert json.loads((fixed / "calibration.json").read_text(encoding="utf-8"))["group_scores"] == {}
    with pytest.raises(SystemExit, match=r"guideline_weight: Input should be less than or equal to 1"):
        cli_main(["train", "--store", str(tmp_path / "cases.sqlite"), "--out", str(tmp_path / "bad"),
                  "--guideline-weight", "1.5"])


@pytest.mark.real_data
def test_path_contributions_add_up_to_the_booster_on_real_judgments(shared_data: Path,
                                                                     predictor: RangePredictor) -> None:
    from sentencing.importers import read_cases
    from training.explain import PathExplainer

    cases = list(read_cases("judge", [shared_data / "judge" / "judgments.jsonl"], errors=[]))
    X = np.vstack([predictor.features(c.before_judgment())[0] for c in cases if c.defendants])
    booster = predictor.lightgbm_booster()
    contrib = PathExplainer(booster).contributions(X)
    np.testing.assert_allclose(contrib.sum(axis=1), booster.predict(X), atol=1e-9)
    assert np.count_nonzero(contrib[:, :-1]) > len(X)  # more than one feature per row gets credit


@pytest.mark.real_data
def test_text_estimate_matches_scikit_learn_and_round_trips(shared_data: Path, tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    from features.text import TextEstimator, case_text
    from sentencing.importers import read_cases

    cases = list(read_cases("judge", [shared_data / "judge" / "judgments.jsonl"], errors=[]))[:80]
    texts = [case_text(c.facts, c.reasoning) for c in cases]
    y = np.log1p([max(c.defendants[0].sentence.term_months, 0) for c in cases])
    estimator = TextEstimator.fit(texts, y, max_features=5000)
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), max_features=5000, sublinear_tf=True, min_df=2)
    reference = Ridge(alpha=1.0).fit(vec.fit_transform(texts), y).predict(vec.transform(texts))
    np.testing.assert_allclose(estimator.predict(texts), reference, atol=1e-9)
    estimator.save(tmp_path)
    np.testing.assert_allclose(TextEstimator.load(tmp_path).predict(texts[:5]), reference[:5], atol=1e-9)


def test_text_gram_keys_are_the_character_ngrams() -> None:
    from collections import Counter

    from sklearn.feature_extraction.text import TfidfVectorizer

    from features.text import gram_key, text_gram_keys

    for text in ("", "盗", "AB", "被告人张某  窃取\n\t现金3,000元。", "Ab\u00e9😀\u4e00  x", "a" * 50):
        for n_max in (1, 2, 3):
            analyzer = TfidfVectorizer(analyzer="char", ngram_range=(1, n_max)).build_analyzer()
            expected = Counter(gram_key(g) for g in analyzer(text))
            assert Counter(text_gram_keys(text, n_max).tolist()) == expected, (text, n_max)
    assert len({gram_key(g) for g in ("a", "aa", "aaa", "\x00", "\x00\x00", "𐀀")}) == 6  # no two grams share a key


@pytest.mark.slow
def test_model_with_text_feature_serves_it(tmp_path: Path) -> None:
    out = train(generate_cases(80, seed=21), tmp_path / "m", config=TrainConfig(text=True, n_estimators=30))
    predictor = RangePredictor.load(out)
    assert predictor.text is not None
    case = next(iter(generate_cases(1, seed=99))).before_judgment()
    X, _, _ = predictor.features(case)
    assert np.all(np.isfinite(X[:, predictor.spec.index("text_estimate")]))
    assert len(predictor.predict_case(case)) == len(case.defendants)
