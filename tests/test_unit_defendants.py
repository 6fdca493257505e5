"""Unit defendants (被告单位): the law fines a unit and gives it no term (刑法第三十一条).

Parsing marks them, the guideline engine returns that outcome, the models neither learn from them
nor predict for them, the role comparison leaves them out, and the API reads them from the name
unless told. The judgment text below is written for this test in the style of real judgments.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sentencing.case import (
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    Court,
    Defendant,
    Measure,
    Quantities,
    Role,
    looks_like_unit,
)
from sentencing.demo_corpus import generate_cases
from sentencing.guideline import UNIT_TIER_LABEL, calculate, statutory_tier
from sentencing.parsing import parse_judgment_document
from sentencing.sentence import Sentence, SentenceForm, SentenceKind
from training.evaluate import predict_records
from training.predictor import UNIT_EXPLANATION, RangePredictor
from training.train import TrainConfig, fit_models, prepare, train

DOCUMENT = (
    "某建材有限公司、王某单位行贿一审刑事判决书 江苏省扬州市邗江区人民法院 刑事判决书 （2019）苏1003刑初88号 "
    "公诉机关扬州市邗江区人民检察院。 "
    "被告单位扬州某建材有限公司，住所地扬州市邗江区某路8号。 诉讼代表人赵某，该公司职员。 "
    "被告人王某，男，1975年6月1日出生，汉族，大专文化，系扬州某建材有限公司法定代表人。"
    "因涉嫌犯单位行贿罪于2018年9月3日被取保候审。 "
    "扬州市邗江区人民检察院以邗检诉刑诉〔2019〕12号起诉书指控被告单位扬州某建材有限公司、被告人王某犯单位行贿罪，"
    "于2019年3月1日向本院提起公诉。 "
    "公诉机关指控：2014年至2017年，被告单位扬州某建材有限公司为谋取不正当利益，经被告人王某决定，"
    "先后给予国家工作人员财物共计人民币三十二万元。2018年9月3日，被告人王某主动到检察机关投案。 "
    "本院认为，被告单位扬州某建材有限公司为谋取不正当利益，给予国家工作人员财物，情节严重，其行为已构成单位行贿罪；"
    "被告人王某系直接负责的主管人员，亦构成单位行贿罪。被告人王某自动投案，如实供述罪行，系自首。 "
    "判决如下： 一、被告单位扬州某建材有限公司犯单位行贿罪，判处罚金人民币三十万元。 "
    "二、被告人王某犯单位行贿罪，判处有期徒刑一年，缓刑二年。"
)


def test_the_header_label_and_the_name_mark_a_unit() -> None:
    case = parse_judgment_document(DOCUMENT, case_id="unit-doc")
    by_name = {d.name: d for d in case.defendants}
    assert by_name["扬州某建材有限公司"].is_unit
    assert not by_name["王某"].is_unit
    assert by_name["扬州某建材有限公司"].sentence == Sentence(kind=SentenceKind.FINE_ONLY, fine_yuan=300_000)
    assert looks_like_unit("郑州某机动车辆检测有限公司") and looks_like_unit("某县农机合作社")
    assert looks_like_unit("北京某律师事务所（普通合伙）") and looks_like_unit("某某加油站")
    assert not looks_like_unit("王厂") and not looks_like_unit("阿不力克木·模沙")
    assert not looks_like_unit("张公司长") and not looks_like_unit("刘某某")  # the kind must end the name


@pytest.mark.usefixtures("shared_data")
def test_the_real_unit_defendants_are_found_and_no_person_is_taken_for_one(shared_data: Path) -> None:
    from sentencing.importers import read_cases

    errors: list = []
    cases = list(read_cases("judge", [shared_data / "judge" / "judgments.jsonl"], errors))
    cases += list(read_cases("lawbench", [shared_data / "lawbench" / "term_prediction.jsonl"], errors))
    units = [d for c in cases for d in c.defendants if d.is_unit]
    # Read by hand: the two 被告单位 of the JuDGE file, both fined 100,000 yuan and nothing else.
    assert sorted(d.name for d in units) == ["扬州唯盛超细粉股份有限公司", "郑州安达机动车辆检测有限公司"]
    assert all(d.sentence is not None and d.sentence.kind is SentenceKind.FINE_ONLY for d in units)
    assert all(calculate(d, c).kind is SentenceKind.FINE_ONLY for c in cases for d in c.defendants if d.is_unit)


def test_the_guideline_fines_a_unit_and_gives_a_person_of_the_same_crime_a_term() -> None:
    unit = Defendant(name="扬州某建材有限公司", is_unit=True, charges=[Charge(name="单位行贿")],
                     circumstances=[Circumstance(code=CircumstanceCode.SURRENDER)])
    result = calculate(unit)
    assert (result.kind, result.form) == (SentenceKind.FINE_ONLY, SentenceForm.NON_CUSTODIAL)
    assert (result.low_months, result.point_months, result.high_months) == (0.0, 0.0, 0.0)
    assert result.term_months == 0 and result.fine_yuan is None and not result.warnings
    assert result.statutory is not None and result.statutory.tier_label == UNIT_TIER_LABEL
    assert statutory_tier(unit) == ("单位行贿", UNIT_TIER_LABEL)
    assert all("刑法第30条、第31条" in s.basis for s in result.steps)
    assert result.explain_text().startswith("被告单位扬州某建材有限公司：单位行贿罪")
    assert result.summary_text() == "建议对被告单位判处罚金"

    person = calculate(unit.model_copy(update={"name": "王某", "is_unit": False}))
    assert person.kind is not SentenceKind.FINE_ONLY and (person.point_months or 0) > 0
    assert person.statutory is not None and person.statutory.tier_label == "对直接负责的主管人员和其他直接责任人员"
    nameless = calculate(Defendant(name="某公司", is_unit=True))
    assert nameless.statutory is None and [w.code for w in nameless.warnings] == ["no_charges"]


def _with_unit_case(sentenced: bool) -> Case:
    """A company as the principal of a theft and a person as its accessory: the law compares neither."""
    fine = Sentence(kind=SentenceKind.FINE_ONLY, fine_yuan=50_000) if sentenced else None
    term = Sentence(kind=SentenceKind.FIXED_TERM, months=14) if sentenced else None
    return Case(
        id=f"unit-case-{sentenced}", province="JS", court=Court(name="江苏省南京市玄武区人民法院", province="JS"),
        facts="被告单位南京某物流有限公司、被告人陈某盗窃他人财物，价值人民币八万元。",
        defendants=[
            Defendant(name="南京某物流有限公司", is_unit=True, charges=[Charge(name="盗窃")], role=Role.PRINCIPAL,
                      sentence=fine),
            Defendant(name="陈某", charges=[Charge(name="盗窃")], role=Role.ACCESSORY, sentence=term,
                      quantities=Quantities(amount_yuan=Measure(value=80_000))),
        ],
    )


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> RangePredictor:
    out = tmp_path_factory.mktemp("unit-model") / "model"
    return RangePredictor.load(train(generate_cases(400, seed=5), out,
                                     config=TrainConfig(n_estimators=40, calibration_folds=2)))


def test_a_unit_is_predicted_the_fine_and_leaves_its_accessory_alone(predictor: RangePredictor) -> None:
    unit, person = predictor.predict_case(_with_unit_case(sentenced=False))
    assert (unit.range.low_months, unit.range.point_months, unit.range.high_months) == (0.0, 0.0, 0.0)
    assert unit.form is SentenceForm.NON_CUSTODIAL and unit.form_probabilities["non_custodial"] == 1.0
    assert [(c.group, c.label, c.months) for c in unit.contributions] == [("unit", UNIT_EXPLANATION, 0.0)]
    assert unit.guideline is not None and unit.guideline.kind is SentenceKind.FINE_ONLY
    # The accessory is not held under a 0-month "principal": its range is a theft of 80,000 yuan's.
    alone = predictor.predict_case(_with_unit_case(sentenced=False).model_copy(
        update={"defendants": [_with_unit_case(sentenced=False).defendants[1]]}))[0]
    assert person.range.point_months is not None and person.range.point_months > 6
    assert person.range == alone.range
    assert not any("不高于同案主犯" in w for w in person.warnings)
    assert predictor.predict_case(_with_unit_case(sentenced=False), explain=False)[0].contributions == []


def test_evaluation_scores_a_unit_with_the_law_s_outcome(predictor: RangePredictor) -> None:
    records, stats = predict_records(predictor, [_with_unit_case(sentenced=True)])
    unit, person = records
    assert (unit.true_months, unit.pred_months, unit.form) == (0, 0.0, "non_custodial")
    assert person.true_months == 14 and person.pred_months > 0
    assert stats["role_pairs_violating"] == 0 and stats["defendants_adjusted"] == 0


def test_models_do_not_learn_from_unit_rows() -> None:
    cases = [*generate_cases(60, seed=3), _with_unit_case(sentenced=True)]
    ds, spec = prepare(cases)
    assert ds.units.tolist().count(True) == 1 and ds.subset(ds.units).names == ["南京某物流有限公司"]
    fitted = fit_models(ds, spec, TrainConfig(n_estimators=10, calibration_folds=2))
    # Every term row is held out once for calibration: the unit's "0 months" is not among them.
    assert fitted.oof_metrics["oof_defendants"] == int(ds.has_term.sum()) - 1


def test_the_api_reads_a_unit_from_its_name_unless_told(tmp_path_factory: pytest.TempPathFactory) -> None:
    from sentencing.config import Settings
    from serve.app import create_app
    from serve.auth import KeyRole
    from serve.server import BackgroundServer
    from tests.test_service_recommend import demo_home

    built = demo_home(tmp_path_factory)
    settings = Settings(home=tmp_path_factory.mktemp("unit-home"), store=built / "cases.sqlite",
                        model_dir=built / "model", index_dir=built / "index")
    app = create_app(settings)
    key = app.state.service.keys.create(KeyRole.PROSECUTOR, office="玄武区人民检察院")[0]
    body = {
        "facts": "被告单位南京某物流有限公司、被告人陈某盗窃他人财物，价值人民币八万元。陈某到案后如实供述。",
        "province": "JS",
        "defendants": [{"name": "南京某物流有限公司", "charges": ["盗窃"]}, {"name": "陈某", "charges": ["盗窃"]}],
    }
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=60,
                                                    headers={"Authorization": f"Bearer {key}"}) as client:
        got = client.post("/v1/recommendations", json=body)
        assert got.status_code == 200, got.text
        unit, person = got.json()["defendants"]
        assert (unit["facts_used"]["unit"], unit["facts_used"]["unit_source"]) == (True, "name")
        assert unit["range"]["point_months"] == 0.0 and unit["form"]["predicted"] == "non_custodial"
        assert unit["guideline"]["kind"] == "fine_only" and unit["statutory"]["tier_label"] == UNIT_TIER_LABEL
        assert (person["facts_used"]["unit"], person["range"]["point_months"] > 0) == (False, True)

        body["defendants"][0]["unit"] = False  # the caller says otherwise: taken as stated
        told = client.post("/v1/recommendations", json=body).json()["defendants"][0]
        assert (told["facts_used"]["unit"], told["facts_used"]["unit_source"]) == (False, "input")
        assert told["range"]["point_months"] > 0

        body["defendants"][0]["unit"] = "maybe"
        bad = client.post("/v1/recommendations", json=body)
        assert bad.status_code == 422 and "unit" in bad.text
