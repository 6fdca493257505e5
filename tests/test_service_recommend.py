"""Recommendations end to end over real HTTP, on a real bundle (demo corpus → store → LightGBM → FAISS):
the response contract, decisions and office scoping, the case store, batch, and hot reload under load."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sentencing.config import Settings
from serve.app import create_app
from serve.auth import KeyRole
from serve.bootstrap import ensure_default
from serve.server import BackgroundServer
from training.train import TrainConfig

DEMO_CASES = 300

CASE = {
    "id": "苏0106刑初1号",
    "facts": "经审理查明：2023年5月12日，被告人张三伙同被告人李四在南京市某商场内，趁被害人王某不备，窃取其手机一部，"
    "价值人民币12000元。张三负责望风，李四实施扒窃。案发后，张三主动到公安机关投案，如实供述犯罪事实。李四系累犯。",
    "court": "江苏省南京市鼓楼区人民法院",
    "province": "JS",
    "defendants": [
        {"name": "张三", "charges": ["盗窃"]},
        {"name": "李四", "charges": ["盗窃罪"], "role": "principal"},
        {"name": "王五", "charges": ["诈骗"], "circumstances": ["plea_agreement"],
         "quantities": {"amount_yuan": 50000}},
    ],
}


def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small embedded default per test session, shared by the service test modules."""
    home = tmp_path_factory.getbasetemp() / "liangxing-demo-home"
    # A small corpus and the encoder's SVD start only (no contrastive epochs): seconds, not minutes.
    ensure_default(Settings(home=home, demo_cases=DEMO_CASES, retrieval_epochs=0),
                   train_config=TrainConfig(n_estimators=40, calibration_folds=2))
    return home


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    built = demo_home(tmp_path_factory)
    home = tmp_path_factory.mktemp("recommend-home")
    settings = Settings(home=home, store=built / "cases.sqlite", model_dir=built / "model", index_dir=built / "index",
                        rate_limit_per_minute=100_000, rate_limit_burst=10_000, max_batch=5)
    app = create_app(settings)
    keys = app.state.service.keys
    raw = {
        "prosecutor": keys.create(KeyRole.PROSECUTOR, office="鼓楼区人民检察院")[0],
        "other_office": keys.create(KeyRole.PROSECUTOR, office="玄武区人民检察院")[0],
        "integration": keys.create(KeyRole.INTEGRATION, office="鼓楼区人民检察院")[0],
        "admin": keys.create(KeyRole.ADMIN)[0],
    }
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, raw, app, built


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _recommend(live) -> Callable[[dict[str, Any]], httpx.Response]:
    """POST /v1/recommendations with the prosecutor's key: what most tests here send."""
    client, keys, _, _ = live
    return lambda body: client.post("/v1/recommendations", json=body, headers=_h(keys["prosecutor"]))


def test_ready_with_bundle(live) -> None:
    client, _, _, _ = live
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["model_version"] and ready["index_size"] > 0


def test_a_loaded_bundle_has_built_its_search_tables(live) -> None:
    """Validating a bundle searches the probe case: the filters' bitmaps and the rows by charge are
    built then, before the first request, not by it."""
    _, _, app, _ = live
    index = app.state.service.current().index
    assert index._bases is not None and index._order is not None
    assert index._bases[0] == index._order[0] == index._generation


def test_recommendation_contract(live) -> None:
    client, keys, _, _ = live
    res = client.post("/v1/recommendations", json=CASE, headers=_h(keys["prosecutor"]))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["api_version"] == "1" and len(body["request_id"]) == 32
    assert body["model_version"] and body["ruleset_version"] and body["case_id"] == CASE["id"]
    names = [d["name"] for d in body["defendants"]]
    assert names == ["张三", "李四", "王五"]
    for d in body["defendants"]:
        r = d["range"]
        assert r["low_months"] <= r["point_months"] <= r["high_months"] and 0 < r["confidence"] < 1
        assert abs(sum(d["form"]["probabilities"].values()) - 1) < 1e-3
        assert d["form"]["predicted"] in d["form"]["probabilities"]
        assert d["guideline"]["steps"] and "规则集版本" in d["guideline"]["explanation_text"]
        assert d["statutory"]["article"]
        assert d["similar_cases"], d["name"]
        for s in d["similar_cases"]:
            assert s["province"] != "JS"  # other provinces than the case's own by default
            assert s["synthetic"] is True and s["sentence_text"]
        assert d["cohort"]["n"] >= 0 and "definition" in d["cohort"]
    zhang, li, wang = body["defendants"]
    # Extracted from the facts, with the text span shown; stated facts kept as stated.
    found = zhang["facts_used"]["circumstances"]
    assert found and all(c["source"] == "extracted" for c in found)
    assert all(c["evidence"]["text"] in CASE["facts"] for c in found)  # the span it was read from
    assert li["facts_used"]["role"] == "principal" and li["facts_used"]["role_source"] == "input"
    assert [c["code"] for c in wang["facts_used"]["circumstances"]] == ["plea_agreement"]
    assert wang["facts_used"]["quantities"]["amount_yuan"]["value"] == 50000
    assert wang["facts_used"]["quantities_source"] == "input"


def test_a_prior_record_that_may_be_recidivism_is_a_named_warning(live) -> None:
    client, keys, _, _ = live
    case = {"facts": "经审理查明：2022年3月12日，被告人刘某某在杭州市某小区盗窃电动车一辆，价值人民币4000元。"
                     "被告人刘某某曾因犯盗窃罪于2019年5月被判处有期徒刑一年，2020年5月3日刑满释放。",
            "province": "ZJ", "defendants": [{"name": "刘某某", "charges": ["盗窃"]}]}
    (d,) = client.post("/v1/recommendations", json=case, headers=_h(keys["prosecutor"])).json()["defendants"]
    assert [c["code"] for c in d["facts_used"]["circumstances"]] == ["prior_record"]
    (w,) = [w for w in d["warnings"] if w["code"] == "possible_recidivist"]
    assert w["field"] == "circumstances" and "2020年5月3日" in w["message"] and "刑法第65条" in w["message"]
    case["defendants"][0]["circumstances"] = ["recidivist", "prior_record"]  # stated: nothing to check
    (d,) = client.post("/v1/recommendations", json=case, headers=_h(keys["prosecutor"])).json()["defendants"]
    assert not [w for w in d["warnings"] if w["code"] == "possible_recidivist"]
    drugs = {"facts": "经审理查明：2022年3月12日，被告人刘某某向吸毒人员贩卖甲基苯丙胺0.5克。"
                      "被告人刘某某曾因犯贩卖毒品罪于2010年被判处有期徒刑三年，2013年刑满释放。",
             "province": "ZJ", "defendants": [{"name": "刘某某", "charges": ["贩卖毒品"]}]}
    (d,) = client.post("/v1/recommendations", json=drugs, headers=_h(keys["prosecutor"])).json()["defendants"]
    assert [w["code"] for w in d["warnings"] if w["code"] in ("possible_recidivist", "drug_reoffender")] == [
        "drug_reoffender"]  # released nine years before: no 累犯, but 毒品再犯 has no time limit


def test_a_statutory_tier_no_fact_decides_is_a_named_warning(live) -> None:
    """9 million yuan of 挪用资金: the amount selects 数额巨大 (three to seven years), but the catalogue has no
    amount standard for 数额特别巨大, so the range shown may be the wrong one; the prosecutor is told which
    other tier exists."""
    client, keys, _, _ = live
    case = {"facts": "经审理查明：2019年至2021年，被告人钱某某利用担任某公司出纳的职务便利，"
                     "挪用本单位资金人民币943.4万元用于个人投资，超过三个月未还。",
            "province": "ZJ", "defendants": [{"name": "钱某某", "charges": ["挪用资金"]}]}
    (d,) = client.post("/v1/recommendations", json=case, headers=_h(keys["prosecutor"])).json()["defendants"]
    (w,) = [w for w in d["warnings"] if w["code"] == "tier_undetermined"]
    assert w["field"] == "tiers" and "“挪用本单位资金数额巨大的”" in w["message"] and "数额特别巨大" in w["message"]
    # no ceiling is stated of a tier a heavier one may replace (its floor stays: the other tier is heavier)
    assert not [w for w in d["warnings"] if "法定刑幅度上限" in w["message"]]
    theft = {"facts": "经审理查明：被告人孙某在某超市盗窃财物，价值人民币5000元。", "province": "ZJ",
             "defendants": [{"name": "孙某", "charges": ["盗窃"]}]}
    (d,) = client.post("/v1/recommendations", json=theft, headers=_h(keys["prosecutor"])).json()["defendants"]
    assert not [w for w in d["warnings"] if w["code"] == "tier_undetermined"]  # the amount decides 盗窃's tier


def test_the_prosecutor_states_a_tier_no_fact_decides(live) -> None:
    """``tiers``: the 法定刑幅度 the prosecutor holds applies; the guideline prices in it and says so."""
    client, keys, _, _ = live
    heavy = "纠集他人多次实施，严重破坏社会秩序"
    case = {"facts": "经审理查明：2021年至2022年，被告人周某纠集他人多次在公共场所随意殴打他人，严重破坏社会秩序。",
            "province": "ZJ", "defendants": [{"name": "周某", "charges": ["寻衅滋事罪"]}]}
    post = _recommend(live)
    (plain,) = post(case).json()["defendants"]
    assert plain["statutory"]["tier_label"] == "基本犯"
    assert [w for w in plain["warnings"] if w["code"] == "tier_undetermined" and heavy in w["message"]]
    case["defendants"][0]["tiers"] = {"寻衅滋事罪": heavy}  # 罪 or not, as in charges
    (stated,) = post(case).json()["defendants"]
    assert stated["statutory"]["tier_label"] == heavy and stated["statutory"]["min_months"] == 60
    assert "检察官认定" in stated["guideline"]["steps"][0]["rule"]
    assert stated["guideline"]["point_months"] > plain["guideline"]["point_months"]
    assert not [w for w in stated["warnings"] if w["code"] == "tier_undetermined"]
    # The labels come from the served rule set: GET /v1/charges/{name}.
    charge = client.get("/v1/charges/寻衅滋事罪", headers=_h(keys["prosecutor"])).json()
    assert charge["name"] == "寻衅滋事" and charge["ruleset_version"]
    assert [(t["label"], t["selected_by"]) for t in charge["tiers"]] == [("基本犯", "default"), (heavy, "statement")]
    assert charge["tiers"][1]["range_text"] == "有期徒刑五年至有期徒刑十年"
    theft = client.get("/v1/charges/盗窃", headers=_h(keys["prosecutor"])).json()
    assert {t["selected_by"] for t in theft["tiers"]} == {"facts"}
    assert client.get("/v1/charges/不存在的罪名", headers=_h(keys["prosecutor"])).status_code == 404
    assert client.get("/v1/charges/盗窃").status_code == 401
    # A label the charge does not have, and a charge the defendant is not charged with: 422, naming the field.
    case["defendants"][0]["tiers"] = {"寻衅滋事": "情节特别严重"}
    res = post(case)
    assert res.status_code == 422, res.text
    (err,) = res.json()["error"]["fields"]
    assert err["field"] == "defendants.0.tiers.寻衅滋事" and "基本犯" in err["message"] and heavy in err["message"]
    case["defendants"][0]["tiers"] = {"盗窃": "数额巨大或者有其他严重情节"}
    res = post(case)
    assert res.status_code == 422 and any("tiers" in f["field"] for f in res.json()["error"]["fields"]), res.text
    # In a batch, the bad item fails alone.
    good = {**case, "defendants": [{**case["defendants"][0], "tiers": {"寻衅滋事": heavy}}]}
    bad = {**case, "defendants": [{**case["defendants"][0], "tiers": {"寻衅滋事": "情节特别严重"}}]}
    items = client.post("/v1/recommendations/batch", json={"cases": [good, bad]},
                        headers=_h(keys["prosecutor"])).json()["items"]
    assert [i["ok"] for i in items] == [True, False]
    assert items[1]["error"]["fields"][0]["field"] == "cases.1.defendants.0.tiers.寻衅滋事"


def test_amounts_of_one_charge_price_that_charge_alone(live) -> None:
    """``charge_quantities``: a defendant of two charges whose amounts belong to different crimes. Each
    charge is priced with its own; the defendant's ``quantities`` serve the others."""
    post = _recommend(live)
    case = {"facts": "被告人钱某先后窃取他人财物价值五千元，又虚构事实骗取他人钱款十万元。", "province": "JS",
            "defendants": [{"name": "钱某", "charges": ["盗窃", "诈骗"], "quantities": {"amount_yuan": 105000}}]}

    def tier_rules(d: dict) -> list[str]:
        return [s["rule"] for s in d["guideline"]["steps"] if s["stage"] == "tier"]

    heavy = "适用“数额巨大或者有其他严重情节”"
    (shared,) = post(case).json()["defendants"]
    assert [r[:3] for r in tier_rules(shared)] == ["盗窃罪", "诈骗罪"]
    assert all(heavy in r for r in tier_rules(shared))  # 105,000 yuan for both
    assert [w["field"] for w in shared["warnings"] if w["code"] == "amount_unattributed"] == ["charge_quantities"]
    case["defendants"][0]["charge_quantities"] = {"盗窃": {"amount_yuan": 5000}}
    (own,) = post(case).json()["defendants"]
    theft, fraud = tier_rules(own)
    assert "适用“数额较大”" in theft and heavy in fraud
    assert not [w for w in own["warnings"] if w["code"] == "amount_unattributed"]
    assert "犯罪数额超出2000的部分 3000，每2000增加1个月" in [s["rule"] for s in own["guideline"]["steps"]]  # JS: 2,000
    assert own["guideline"]["point_months"] < shared["guideline"]["point_months"]
    case["defendants"][0]["charge_quantities"] = {"抢劫": {"amount_yuan": 5000}}
    res = post(case)
    assert res.status_code == 422, res.text
    assert any(f["field"].startswith("defendants.0.charge_quantities") for f in res.json()["error"]["fields"])


def test_amounts_each_charge_s_act_tells_are_read_for_that_charge(live) -> None:
    """Left out, quantities are read from the facts; where the facts tell each priced charge's amount with
    its own act (窃取…5000元, 骗取…10万元), each charge is priced with its own and ``facts_used`` says which
    amount, from where. What the caller states of amounts or tiers, even empty, is kept as stated."""
    post = _recommend(live)
    case = {"facts": "被告人钱某窃取他人财物价值人民币5000元，又虚构事实骗取他人钱款人民币10万元。", "province": "JS",
            "defendants": [{"name": "钱某", "charges": ["盗窃", "诈骗"]}]}

    def read(body: dict) -> tuple[dict, dict[str, tuple[float, str, str | None]]]:
        res = post(body)
        assert res.status_code == 200, res.text
        (d,) = res.json()["defendants"]
        return d, {c["charge"]: (c["quantities"]["amount_yuan"]["value"], c["source"],
                                 (c["quantities"]["amount_yuan"].get("evidence") or {}).get("text"))
                   for c in d["facts_used"]["charge_quantities"]}

    d, own = read(case)
    assert own == {"盗窃": (5000, "extracted", "5000元"), "诈骗": (100000, "extracted", "10万元")}
    assert not [w for w in d["warnings"] if w["code"] == "amount_unattributed"]
    theft, fraud = [s["rule"] for s in d["guideline"]["steps"] if s["stage"] == "tier"]
    assert "适用“数额较大”" in theft and "适用“数额巨大或者有其他严重情节”" in fraud
    # a stated tier keeps the amounts read
    _, own = read({**case, "defendants": [{**case["defendants"][0], "tiers": {}}]})
    assert set(own) == {"盗窃", "诈骗"}
    # stated quantities, even empty, are the caller's: no charge's amount is read
    for stated in ({"quantities": {}}, {"charge_quantities": {}}, {"quantities": {"amount_yuan": 105000}}):
        d, own = read({**case, "defendants": [{**case["defendants"][0], **stated}]})
        assert own == {}, stated
    given = {"charge_quantities": {"盗窃": {"amount_yuan": 4000}}}
    _, own = read({**case, "defendants": [{**case["defendants"][0], **given}]})
    assert own == {"盗窃": (4000, "input", None)}


def test_a_tier_the_facts_say_the_conduct_reaches_is_taken_as_stated(live) -> None:
    """The facts say 数额巨大 of an amount the parser reads as one theft of 5,000 yuan (the thefts are
    not added up): the tier is taken as stated, with the sentence as its evidence, and says why; a
    request that gives ``tiers``, even empty, is not read for one."""
    post = _recommend(live)
    case = {"facts": "公诉机关指控：被告人孙某先后十二次在超市盗窃财物，其中一次盗得价值人民币5000元的手机。"
                     "公诉机关认为，被告人孙某以非法占有为目的，多次秘密窃取公私财物，数额巨大，其行为已构成盗窃罪。",
            "province": "ZJ", "defendants": [{"name": "孙某", "charges": ["盗窃"]}]}
    (read,) = post(case).json()["defendants"]
    assert read["statutory"]["tier_label"] == "数额巨大或者有其他严重情节"
    (tier,) = read["facts_used"]["stated_tiers"]
    assert tier["charge"] == "盗窃" and tier["tier"] == "数额巨大或者有其他严重情节" and tier["source"] == "extracted"
    assert "数额巨大，其行为已构成盗窃罪" in tier["evidence"]["text"]
    assert "案情写明" in read["guideline"]["steps"][0]["rule"]
    (w,) = [w for w in read["warnings"] if w["code"] == "stated_tier_differs"]
    assert w["field"] == "tiers" and "“数额较大”" in w["message"]  # what the amount read would select
    case["defendants"][0]["tiers"] = {}
    (given,) = post(case).json()["defendants"]
    assert given["statutory"]["tier_label"] == "数额较大" and given["facts_used"]["stated_tiers"] == []
    case["defendants"][0]["tiers"] = {"盗窃": "数额特别巨大或者有其他特别严重情节"}
    (stated,) = post(case).json()["defendants"]
    assert stated["facts_used"]["stated_tiers"] == [
        {"charge": "盗窃", "tier": "数额特别巨大或者有其他特别严重情节", "source": "input", "evidence": None}]
    assert "检察官认定" in stated["guideline"]["steps"][0]["rule"]
    assert [w["code"] for w in stated["warnings"] if w["code"] == "stated_tier_differs"] == ["stated_tier_differs"]


def test_a_co_defendants_amount_is_pointed_out_not_shared(live) -> None:
    """The amount sentence names only the one who took the money; the lookout's tier would rest on no
    amount. In a joint crime both answer for it (刑法第26、27条), but the service cannot tell a joint act
    from the other's own: it names the co-defendant's amount and asks, and guesses nothing."""
    client, keys, _, _ = live
    case = {"facts": "经审理查明：2022年5月，被告人甲某伙同被告人乙某预谋盗窃。乙某在旁望风。"
                     "甲某撬开车门，窃得现金人民币15000元。", "province": "ZJ",
            "defendants": [{"name": "甲某", "charges": ["盗窃"]}, {"name": "乙某", "charges": ["盗窃"]}]}
    jia, yi = client.post("/v1/recommendations", json=case, headers=_h(keys["prosecutor"])).json()["defendants"]
    assert jia["facts_used"]["quantities"]["amount_yuan"]["value"] == 15000
    assert not [w for w in jia["warnings"] if w["code"] == "co_defendant_quantity"]
    assert yi["facts_used"]["quantities"]["amount_yuan"] is None  # not shared
    (w,) = [w for w in yi["warnings"] if w["code"] == "co_defendant_quantity"]
    assert w["field"] == "quantities.amount_yuan" and "甲某为15000元" in w["message"] and "刑法第26条" in w["message"]
    # Charged with another crime, the co-defendant's amount is no joint crime of theirs.
    case["defendants"][1]["charges"] = ["掩饰、隐瞒犯罪所得"]
    _, yi = client.post("/v1/recommendations", json=case, headers=_h(keys["prosecutor"])).json()["defendants"]
    assert not [w for w in yi["warnings"] if w["code"] == "co_defendant_quantity"]


def test_kilograms_of_drugs_are_never_recommended_a_term(live) -> None:
    """7.4 kg of methamphetamine: the guideline says 无期徒刑; a model that has seen few such
    defendants must not turn that into years (training.predictor.defer_to_guideline_life)."""
    client, keys, _, _ = live
    case = {"facts": "经审理查明：2019年3月，被告人罗某从境外购入甲基苯丙胺7427.8克，运至昆明市贩卖时被抓获。",
            "province": "YN", "defendants": [{"name": "罗某", "charges": ["贩卖毒品"]}]}
    (d,) = client.post("/v1/recommendations", json=case, headers=_h(keys["prosecutor"])).json()["defendants"]
    assert d["guideline"]["kind"] == "life"
    assert d["form"]["predicted"] in ("life", "death")
    assert d["range"]["point_months"] is None and d["range"]["low_months"] is None
    deferred = [w for w in d["warnings"] if "指导意见测算结果为无期徒刑" in w["message"]]
    assert not deferred or d["form"]["probabilities"]["life"] >= 0.6


def test_a_defendant_too_young_to_answer_is_not_punished(live) -> None:
    """刑法第17条: a 15-year-old answers for 抢劫, not for 盗窃; a 13-year-old thief for nothing."""
    post = _recommend(live)
    theft = {"facts": "经审理查明：被告人甲某在某商场盗窃手机一部，价值人民币5000元。", "province": "JS",
             "defendants": [{"name": "甲某", "charges": ["盗窃"], "age": 13}]}
    (d,) = post(theft).json()["defendants"]
    (w,) = [w for w in d["warnings"] if w["code"] == "no_criminal_responsibility"]
    assert w["field"] == "age" and "刑法第17条" in w["message"] and d["warnings"][0] == w  # said first
    assert d["form"]["predicted"] == "non_custodial" and d["form"]["probabilities"]["non_custodial"] == 1.0
    assert (d["range"]["low_months"], d["range"]["point_months"], d["range"]["high_months"]) == (0, 0, 0)
    both = {"facts": "经审理查明：被告人乙某持刀抢劫他人手机一部，价值人民币5000元；"
                     "又盗窃电动车一辆，价值人民币3000元。",
            "province": "JS", "defendants": [{"name": "乙某", "charges": ["抢劫", "盗窃"], "age": 15}]}
    (two,) = post(both).json()["defendants"]
    assert [w["code"] for w in two["warnings"] if w["field"] == "age"] == ["age_limits_responsibility"]
    both["defendants"][0]["charges"] = ["抢劫"]
    (one,) = post(both).json()["defendants"]
    assert two["range"] == one["range"] and two["guideline"]["point_months"] == one["guideline"]["point_months"]
    assert two["charges"] == ["抢劫", "盗窃"]  # the charges as brought, the sentence for what the law allows
    # An adult accessory is not lowered to the no punishment of a principal too young to answer (从犯 ≤ 主犯).
    joint = {"facts": "经审理查明：被告人丙某伙同被告人丁某盗窃电动车一辆，价值人民币8000元，丙某撬锁，丁某望风。",
             "province": "JS", "defendants": [{"name": "丙某", "charges": ["盗窃"], "age": 15, "role": "principal"},
                                              {"name": "丁某", "charges": ["盗窃"], "age": 30, "role": "accessory"}]}
    young, adult = post(joint).json()["defendants"]
    assert young["range"]["point_months"] == 0 and adult["range"]["point_months"] > 0
    assert not [w for w in adult["warnings"] if "不高于同案主犯" in w["message"]]


def test_a_fact_the_article_names_selects_the_heavier_tier(live) -> None:
    """刑法第263条: 入户抢劫 is ten years or more, read from the facts or stated; had been priced at three
    to ten years. Stated empty, the facts do not add it; an unknown code is a 422 naming the field."""
    post = _recommend(live)
    robbery = {"facts": "经审理查明：被告人甲某持刀闯入被害人家中，入户抢劫现金人民币3000元。", "province": "JS",
               "defendants": [{"name": "甲某", "charges": ["抢劫"], "age": 30}]}
    (d,) = post(robbery).json()["defendants"]
    (a,) = d["facts_used"]["aggravations"]
    assert a["code"] == "home_invasion" and a["label"] == "入户抢劫" and a["source"] == "extracted"
    assert "入户抢劫" in a["evidence"]["text"]
    assert d["statutory"]["min_months"] == 120 and d["guideline"]["point_months"] >= 120
    robbery["defendants"][0]["aggravations"] = []
    (plain,) = post(robbery).json()["defendants"]
    assert plain["facts_used"]["aggravations"] == [] and plain["statutory"]["min_months"] == 36
    robbery["defendants"][0]["aggravations"] = ["armed_with_gun"]
    (gun,) = post(robbery).json()["defendants"]
    assert [x["source"] for x in gun["facts_used"]["aggravations"]] == ["input"]
    assert gun["statutory"]["min_months"] == 120
    robbery["defendants"][0]["aggravations"] = ["burglary"]
    bad = post(robbery)
    assert bad.status_code == 422 and "aggravations" in bad.text


def test_a_woman_pregnant_at_trial_is_never_given_death(live) -> None:
    """刑法第49条: no 死刑 (死缓 included) for a woman pregnant at trial, read from the facts or stated;
    第72条: probation is mandatory where its conditions hold, which the warning says for a short term."""
    post = _recommend(live)
    drugs = {"facts": "经审理查明：被告人罗某从境外购入甲基苯丙胺7427.8克，运至昆明市贩卖时被抓获。"
                      "被告人罗某在羁押期间经检查已怀孕。",
             "province": "YN", "defendants": [{"name": "罗某", "charges": ["贩卖毒品"]}]}
    (d,) = post(drugs).json()["defendants"]
    assert d["facts_used"]["pregnant"] is True and d["facts_used"]["pregnant_source"] == "extracted"
    assert d["form"]["probabilities"]["death"] == 0.0 and d["form"]["predicted"] == "life"
    (w,) = [w for w in d["warnings"] if w["code"] == "pregnant_at_trial"]
    assert w["field"] == "pregnant" and "刑法第四十九条" in w["message"] and "第七十二条" not in w["message"]
    # Stated false, the facts do not override it: the model's death probability is back.
    drugs["defendants"][0]["pregnant"] = False
    (stated,) = post(drugs).json()["defendants"]
    assert stated["facts_used"]["pregnant"] is False and stated["facts_used"]["pregnant_source"] == "input"
    assert not [w for w in stated["warnings"] if w["code"] == "pregnant_at_trial"]
    assert stated["form"]["probabilities"]["death"] + stated["form"]["probabilities"]["life"] == pytest.approx(
        d["form"]["probabilities"]["life"], abs=1e-3)
    # A short term: the warning adds 第72条. A victim's pregnancy is not the defendant's.
    theft = {"facts": "经审理查明：被告人甲某在某商场盗窃手机一部，价值人民币5000元。", "province": "JS",
             "defendants": [{"name": "甲某", "charges": ["盗窃"], "pregnant": True}]}
    (t,) = post(theft).json()["defendants"]
    (w,) = [w for w in t["warnings"] if w["code"] == "pregnant_at_trial"]
    assert "应当宣告缓刑（刑法第七十二条）" in w["message"] and t["range"]["point_months"] <= 36
    rape = {"facts": "经审理查明：被告人乙某强奸被害人丙某，致被害人丙某怀孕。", "province": "JS",
            "defendants": [{"name": "乙某", "charges": ["强奸"]}]}
    (r,) = post(rape).json()["defendants"]
    assert r["facts_used"]["pregnant"] is False and not [w for w in r["warnings"] if w["code"] == "pregnant_at_trial"]


def test_unknown_charge_is_a_named_warning_not_an_error(live) -> None:
    client, keys, _, _ = live
    case = {"facts": "被告人赵六实施了某种行为。", "province": "ZJ",
            "defendants": [{"name": "赵六", "charges": ["不存在的罪名"]}]}
    res = client.post("/v1/recommendations", json=case, headers=_h(keys["prosecutor"]))
    assert res.status_code == 200, res.text
    warnings = res.json()["defendants"][0]["warnings"]
    assert any("不存在的罪名" in w["message"] for w in warnings), warnings
    assert all(w["code"] for w in warnings)


def test_decisions_recorded_and_scoped_to_the_office(live) -> None:
    client, keys, app, _ = live
    body = client.post("/v1/recommendations", json=CASE, headers=_h(keys["prosecutor"])).json()
    request_id = body["request_id"]
    zhang = body["defendants"][0]
    url = f"/v1/recommendations/{request_id}/decision"
    within = {"kind": "fixed_term" if zhang["range"]["point_months"] >= 6 else "detention",
              "months": max(1, round(zhang["range"]["point_months"]))}
    form = zhang["form"]["predicted"]
    if form == "probation":
        within["probation_months"] = max(within["months"], 12)
    if form in ("custody", "probation"):
        ok = client.post(url, json={"defendant": "张三", "sentence": within}, headers=_h(keys["prosecutor"]))
        assert ok.status_code == 200, ok.text
        assert ok.json()["departs_from_recommendation"] is False
    far = {"kind": "fixed_term", "months": 300}
    missing_reason = client.post(url, json={"defendant": "张三", "sentence": far}, headers=_h(keys["prosecutor"]))
    assert missing_reason.status_code == 422
    assert missing_reason.json()["error"]["fields"][0]["field"] == "reason"
    with_reason = client.post(url, json={"defendant": "张三", "sentence": far, "reason": "被告人另有重大犯罪事实"},
                              headers=_h(keys["integration"]))
    assert with_reason.status_code == 200 and with_reason.json()["departs_from_recommendation"] is True
    assert client.post(url, json={"defendant": "无此人", "sentence": far, "reason": "x"},
                       headers=_h(keys["prosecutor"])).status_code == 422
    # Another office's key cannot see (or decide on) this request.
    other = client.post(url, json={"defendant": "张三", "sentence": far, "reason": "x"},
                        headers=_h(keys["other_office"]))
    assert other.status_code == 404
    bad_sentence = client.post(url, json={"defendant": "张三", "sentence": {"kind": "fixed_term"}},
                               headers=_h(keys["prosecutor"]))
    assert bad_sentence.status_code == 422
    events = [e for e in app.state.service.audit.events() if e.request_id == request_id]
    assert events[0].event.value == "recommendation"
    decisions = [e for e in events if e.event.value == "decision"]
    assert decisions[-1].override_reason == "被告人另有重大犯罪事实"
    assert decisions[-1].decision["departure"]
    assert events[0].input_hash and events[0].outputs["defendants"][0]["name"] == "张三"
    export = client.get("/v1/admin/audit", headers=_h(keys["admin"]))
    assert export.status_code == 200 and request_id in export.text


def test_case_view_masks_party_names(live) -> None:
    client, keys, _, built = live
    from sentencing.store import CaseStore

    store = CaseStore(built / "cases.sqlite")
    case = next(iter(store.iter_cases()))
    res = client.get(f"/v1/cases/{case.id}", headers=_h(keys["prosecutor"]))
    assert res.status_code == 200, res.text
    view = res.json()
    for d, original in zip(view["defendants"], case.defendants, strict=True):
        assert d["name"].endswith("某") or "某" in d["name"]
        if len(original.name) >= 2 and "某" not in original.name:
            assert original.name not in view["facts"]
    assert client.get("/v1/cases/no-such-case", headers=_h(keys["prosecutor"])).status_code == 404


def test_similar_cases_and_batch(live) -> None:
    client, keys, _, _ = live
    res = client.post("/v1/similar-cases", json={"case": CASE, "defendant": "李四", "k": 5, "province_scope": "any"},
                      headers=_h(keys["integration"]))
    assert res.status_code == 200, res.text
    assert res.json()["defendant"] == "李四" and 1 <= len(res.json()["similar_cases"]) <= 5
    missing = client.post("/v1/similar-cases", json={"case": CASE, "defendant": "无此人"},
                          headers=_h(keys["integration"]))
    assert missing.status_code == 422 and missing.json()["error"]["fields"][0]["field"] == "defendant"
    no_province = {**CASE, "province": None, "court": None}
    scoped = client.post("/v1/similar-cases", json={"case": no_province, "province_scope": "other"},
                         headers=_h(keys["integration"]))
    assert scoped.status_code == 422 and scoped.json()["error"]["fields"][0]["field"] == "province_scope"

    batch = {"cases": [CASE, {"facts": "", "defendants": []}, {**CASE, "id": "second"}]}
    res = client.post("/v1/recommendations/batch", json=batch, headers=_h(keys["integration"]))
    assert res.status_code == 200, res.text
    items = res.json()["items"]
    assert [i["ok"] for i in items] == [True, False, True]
    fields = {f["field"] for f in items[1]["error"]["fields"]}
    assert {"cases.1.facts", "cases.1.defendants"} <= fields
    assert items[2]["result"]["case_id"] == "second"


def test_reload_refuses_a_broken_model_and_keeps_serving(live, tmp_path: Path) -> None:
    client, keys, _, built = live
    before = client.get("/readyz").json()
    broken = tmp_path / "broken-model"
    shutil.copytree(built / "model", broken)
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    res = client.post("/v1/admin/reload", json={"model_dir": str(broken)}, headers=_h(keys["admin"]))
    assert res.status_code == 409, res.text
    assert "broken-model" in res.json()["error"]["message"]
    missing = client.post("/v1/admin/reload", json={"model_dir": str(tmp_path / "nothing")}, headers=_h(keys["admin"]))
    assert missing.status_code == 409
    after = client.get("/readyz").json()
    assert after["ready"] and after["loaded_at"] == before["loaded_at"]
    assert client.post("/v1/recommendations", json=CASE, headers=_h(keys["prosecutor"])).status_code == 200
    assert 'outcome="refused"' in client.get("/metrics").text


@pytest.mark.slow
def test_zero_failed_requests_while_reloading_under_load(live, tmp_path: Path) -> None:
    """A client thread hammers the API over HTTP while the model is swapped repeatedly: no non-2xx."""
    client, keys, _, built = live
    second = tmp_path / "model-copy"
    shutil.copytree(built / "model", second)
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            while not stop.is_set():
                statuses.append(c.post("/v1/recommendations", json=CASE, headers=_h(keys["prosecutor"])).status_code)

    workers = [threading.Thread(target=hammer) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        reloads = []
        for model_dir in (second, built / "model", second, built / "model"):
            time.sleep(0.3)
            res = client.post("/v1/admin/reload", json={"model_dir": str(model_dir)}, headers=_h(keys["admin"]))
            reloads.append(res.status_code)
            assert res.json()["model_dir"] == str(model_dir)
        time.sleep(0.3)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert reloads == [200, 200, 200, 200]
    assert len(statuses) >= 8
    assert [s for s in statuses if not 200 <= s < 300] == []


def test_registry_promotion_then_reload_switches_the_served_version(live, tmp_path: Path) -> None:
    """With LIANGXING_REGISTRY set, the service serves the registry's CURRENT version; a bare reload
    picks up a promotion or rollback, and an empty registry is refused without losing the bundle."""
    from training.registry import ModelRegistry, VersionInfo

    _, _, _, built = live
    registry = ModelRegistry(tmp_path / "registry")
    for vid in ("v1", "v2"):
        with registry.staging(vid) as folder:
            shutil.copytree(built / "model", folder / "model")
            shutil.copytree(built / "index", folder / "index")
            registry.write_info(folder, VersionInfo(id=vid, created="2026-11-27T00:00:00Z", has_index=True))
    registry.promote("v1")
    settings = Settings(home=tmp_path / "home", registry=registry.root)
    app = create_app(settings)
    admin = app.state.service.keys.create(KeyRole.ADMIN)[0]
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/readyz").json()["ready"] is True
        registry.promote("v2")
        res = client.post("/v1/admin/reload", headers=_h(admin))
        assert res.status_code == 200, res.text
        assert res.json()["model_dir"] == str(registry.root / "versions" / "v2" / "model")
        registry.rollback()
        res = client.post("/v1/admin/reload", headers=_h(admin))
        assert res.json()["model_dir"] == str(registry.root / "versions" / "v1" / "model")
    (registry.root / "CURRENT").unlink()
    empty = create_app(settings)
    admin = empty.state.service.keys.create(KeyRole.ADMIN)[0]
    with BackgroundServer(empty) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/readyz").status_code == 503
        refused = client.post("/v1/admin/reload", headers=_h(admin))
        assert refused.status_code == 409 and "registry" in refused.json()["error"]["message"]


def test_cached_cohorts_are_whole_whoever_asked_first(live) -> None:
    """An indexed case's cohort leaves out its own rows; that must not leak to the next asker of the key."""
    from sentencing.store import CaseStore
    from serve.recommender import CohortCache, cohort_out

    _client, _raw, app, built = live
    index = app.state.service.current().index
    store = CaseStore(built / "cases.sqlite")
    checked = 0
    for case_id in list(store.ids())[:60]:
        case = store.get(case_id)
        assert case is not None
        if not index.indexed(case.id) or not case.defendants:
            continue
        d = case.defendants[0]
        own, stranger = case.before_judgment(), case.before_judgment().model_copy(update={"id": "未入库案件"})
        without_own = index.cohort(own, d)
        whole = index.cohort(stranger, d)
        if without_own.n == whole.n:
            continue  # its own rows are not in its cohort: says nothing
        cache = CohortCache(index)
        assert cache.get(own, d) == cohort_out(without_own)  # the indexed case asks first…
        assert cache.get(stranger, d) == cohort_out(whole)  # …and the next asker still gets the whole cohort
        assert cache.get(own, d) == cohort_out(without_own)
        checked += 1
        if checked == 3:
            break
    assert checked, "no indexed case whose own rows are in its cohort among the first 60"
