"""The guideline calculator on hand-worked examples, one or more per crime family.

Every expected number is worked out by hand in the comments from the bundled catalogue
(sentencing/data/charges.toml): starting point = the midpoint of the start range
(``method.start_position = 0.5``) unless the tier gives ``start_point``; typical ratios from
``[circumstances.*]``; the 20% discretion band, +10% per distinct warning code.
"""

from __future__ import annotations

import pytest

from sentencing.case import (
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    Defendant,
    Injury,
    InjuryGrade,
    Measure,
    Quantities,
    Role,
    Sentence,
)
from sentencing.charges import default_catalogue
from sentencing.guideline import GuidelineResult, calculate, life_rests_on_deaths
from sentencing.sentence import SentenceForm, SentenceKind

C = CircumstanceCode


def defendant(
    *charges: str,
    circumstances: tuple[CircumstanceCode, ...] = (),
    role: Role = Role.SOLE,
    age: int | None = None,
    **quantities: object,
) -> Defendant:
    return Defendant(
        name="张某",
        charges=[Charge(name=c) for c in charges],
        circumstances=[Circumstance(code=c) for c in circumstances],
        role=role,
        age=age,
        quantities=Quantities(**quantities),
    )


def case_in(province: str | None) -> Case:
    return Case(id="t", province=province)


def amount(yuan: float) -> Measure:
    return Measure(value=yuan)


def codes(result: GuidelineResult) -> set[str]:
    return {w.code for w in result.warnings}


# --------------------------------------------------------------------------- property


def test_theft_in_jiangsu_with_confession_restitution_and_plea() -> None:
    # Jiangsu: 数额较大 2000 → tier 1 (管制…3年). Start: (1+12)/2 = 6.5.
    # Baseline: (8000−2000)/2000 × 1 month = 3 → 9.5.
    # Second tier: 坦白 −15%, 退赃 −15%; 认罪认罚 with them counts only its −5% premium (no double
    # counting) → −35% × 9.5 = −3.325 → 6.175 months. Band ±20% → 4.94 … 7.41.
    # Probation: ≤ 3 years, no record, three signs of remorse. Fine: 1 × 8000 = 8000 yuan.
    d = defendant("盗窃罪", circumstances=(C.CONFESSION, C.PLEA_AGREEMENT, C.RESTITUTION), amount_yuan=amount(8000))
    r = calculate(d, case_in("JS"))
    assert r.charges == ["盗窃"]
    assert r.statutory is not None and r.statutory.tier_label == "数额较大" and r.statutory.article == "264"
    calc = r.charge_results[0]
    assert calc.starting_point_months == pytest.approx(6.5)
    assert calc.baseline_months == pytest.approx(9.5)
    assert r.point_months == pytest.approx(6.175)
    assert (r.low_months, r.high_months) == (pytest.approx(4.94), pytest.approx(7.41))
    assert r.kind is SentenceKind.FIXED_TERM
    assert r.form is SentenceForm.PROBATION and r.probation_eligible
    assert r.fine_yuan == 8000
    assert r.warnings == []
    plea = [s for s in r.steps if s.circumstance is C.PLEA_AGREEMENT]
    assert len(plea) == 1 and plea[0].ratio == pytest.approx(-0.05)


def test_theft_threshold_depends_on_the_province() -> None:
    d = defendant("盗窃", amount_yuan=amount(2500))
    # Zhejiang's 数额较大 is 3000: 2500 is below it → a named warning, still the first tier.
    zj = calculate(d, case_in("ZJ"))
    assert "below_threshold" in codes(zj)
    assert any(w.field == "quantities.amount_yuan" for w in zj.warnings)
    # Jiangsu's is 2000: no warning; 6.5 + 500/2000 = 6.75 months.
    js = calculate(d, case_in("JS"))
    assert js.warnings == [] and js.point_months == pytest.approx(6.75)


def test_recidivist_adds_at_least_three_months_and_bars_probation() -> None:
    # JS theft 2500: baseline 6.75; 累犯 +25% = 1.69 months < 3 → +3 months → 9.75.
    d = defendant("盗窃", circumstances=(C.RECIDIVIST, C.PLEA_AGREEMENT), amount_yuan=amount(2500))
    r = calculate(d, case_in("JS"))
    # Plea alone −20% of 6.75 = −1.35: 6.75 + 3 − 1.35 = 8.4.
    assert r.point_months == pytest.approx(8.4)
    step = next(s for s in r.steps if s.circumstance is C.RECIDIVIST)
    assert step.months == pytest.approx(3.0) and "不少于3个月" in step.rule
    assert r.form is SentenceForm.CUSTODY and not r.probation_eligible


# --------------------------------------------------------------------------- violence


def test_serious_injury_with_surrender_and_compensation_with_forgiveness() -> None:
    # 重伤二级 → tier 致人重伤 (3–10y); start (36+60)/2 = 48; one injured person: no increment.
    # 自首 −20%, 赔偿并谅解 −25% (one combined step, up to −40%) → 48 × 0.55 = 26.4 months.
    # 26.4 is below the tier floor (36) but 自首 is a statutory mitigation (可以减轻, art. 63): kept.
    d = defendant(
        "故意伤害",
        circumstances=(C.SURRENDER, C.COMPENSATION, C.FORGIVENESS),
        injuries=[Injury(grade=InjuryGrade.SERIOUS_2)],
    )
    r = calculate(d)
    assert r.statutory is not None and r.statutory.tier_label == "致人重伤"
    assert r.point_months == pytest.approx(26.4)
    assert not any(s.stage == "clamp" for s in r.steps)
    assert r.fine_yuan is None  # 故意伤害 carries no fine
    assert r.form is SentenceForm.PROBATION


def test_without_mitigation_the_tier_floor_holds() -> None:
    # Same injury, only 赔偿并谅解 (not a statutory mitigation): 48 × 0.75 = 36 → at the floor, kept;
    # with 赔偿并谅解 and 当庭认罪 (−5%): 48 × 0.70 = 33.6 → clamped up to 36.
    d = defendant(
        "故意伤害",
        circumstances=(C.COMPENSATION, C.FORGIVENESS, C.COURT_PLEA),
        injuries=[Injury(grade=InjuryGrade.SERIOUS_2)],
    )
    r = calculate(d)
    clamp = [s for s in r.steps if s.stage == "clamp"]
    assert len(clamp) == 1 and clamp[0].value_months == pytest.approx(36.0)
    assert r.point_months == pytest.approx(36.0)
    # The 20% band may not leave the tier either: 36 … 43.2, not 28.8 … 43.2.
    assert (r.low_months, r.high_months) == (pytest.approx(36.0), pytest.approx(43.2))


def test_juvenile_accessory_surrender_robbery() -> None:
    # 抢劫 basic tier 3–10y: start (36+72)/2 = 54; amount 2000 → +2000/3000 = 0.667 → 54.667.
    # First tier (multiplied): 从犯 ×0.70 → 38.267; 未成年 (17) ×0.70 → 26.787.
    # Second tier: 自首 −20% → 21.429 months: below the 3-year floor, allowed (减轻: 从犯, 未成年人, 自首).
    d = defendant("抢劫", circumstances=(C.SURRENDER,), role=Role.ACCESSORY, age=17, amount_yuan=amount(2000))
    r = calculate(d)
    first = [s for s in r.steps if s.stage == "first_tier"]
    assert [s.ratio for s in first] == [pytest.approx(-0.30), pytest.approx(-0.30)]
    assert first[-1].value_months == pytest.approx(26.7867, abs=1e-3)
    assert r.point_months == pytest.approx(21.4293, abs=1e-3)
    assert r.kind is SentenceKind.FIXED_TERM
    assert r.form is SentenceForm.PROBATION
    assert r.fine_yuan == 2000


def test_juvenile_under_sixteen_gets_the_larger_reduction() -> None:
    # Age 15: −45% instead of −30% (法发〔2021〕21号: 12–16 减少30%-60%).
    r = calculate(defendant("抢劫", age=15))
    step = next(s for s in r.steps if s.circumstance is C.JUVENILE)
    assert step.ratio == pytest.approx(-0.45)
    assert r.point_months == pytest.approx(54 * 0.55)


# --------------------------------------------------------------------------- drugs


def test_drug_trafficking_mixed_drugs_recidivist() -> None:
    # 12 g methamphetamine + 3 g heroin = 15 g equivalent → tier ≥10 g (7–15y): start (84+96)/2 = 90;
    # +2 months per gram above 10 → +10 → 100; 累犯 +25% → 125 months. Custody. Fine 500/month → 62,500 → 62,000.
    d = defendant(
        "贩卖毒品",
        circumstances=(C.RECIDIVIST,),
        drug_grams={"甲基苯丙胺": Measure(value=12), "海洛因": Measure(value=3)},
    )
    r = calculate(d)
    assert r.charges == ["走私、贩卖、运输、制造毒品"]
    assert r.charge_results[0].baseline_months == pytest.approx(100.0)
    assert r.point_months == pytest.approx(125.0)
    assert r.form is SentenceForm.CUSTODY
    assert r.fine_yuan == 62000


def test_small_drug_sale_is_detention_and_probation_is_restricted() -> None:
    # 0.5 g: 少量 tier, start_point 6; plea alone −20% → 4.8 months → 拘役 (tier allows it).
    # Eligible for 缓刑 by statute, but drug trafficking restricts it → custody.
    d = defendant("贩卖毒品", circumstances=(C.PLEA_AGREEMENT,), drug_grams={"甲基苯丙胺": Measure(value=0.5)})
    r = calculate(d)
    assert r.point_months == pytest.approx(4.8)
    assert r.kind is SentenceKind.DETENTION
    assert r.probation_eligible and r.form is SentenceForm.CUSTODY


def test_selling_drugs_three_times_is_the_serious_tier() -> None:
    # 法释〔2016〕8号 第四条(一): 多次贩卖 (three times or more) is 情节严重, 3–7 years, whatever the
    # weight below 10 g. 0.5 g sold 3 times: start (36+48)/2 = 42, no weight increment in that tier;
    # confession −15% → 35.7, below the tier floor of 36 without a mitigation that lowers it → 36.
    d = defendant("贩卖毒品", circumstances=(C.CONFESSION,), drug_grams={"甲基苯丙胺": Measure(value=0.5)},
                  occurrences=Measure(value=3))
    r = calculate(d)
    assert r.statutory is not None and r.statutory.tier_label == "情节严重"
    assert r.statutory.min_months == 36 and r.statutory.max_months == 84
    assert r.point_months == pytest.approx(36.0)
    assert any(s.stage == "clamp" for s in r.steps)
    twice = calculate(defendant("贩卖毒品", drug_grams={"甲基苯丙胺": Measure(value=0.5)},
                                occurrences=Measure(value=2)))
    assert twice.statutory is not None and twice.statutory.tier_label == "少量毒品"
    heavy = calculate(defendant("贩卖毒品", drug_grams={"甲基苯丙胺": Measure(value=12)}, occurrences=Measure(value=3)))
    assert heavy.statutory is not None and heavy.statutory.min_months == 84  # the heavier tier reached wins


def test_huge_drug_quantity_is_life_not_a_month_count() -> None:
    # 2000 g heroin: tier ≥50 g (15y…death): 180 + (2000−50)/10 × 2 = 570 ≥ 180 + 24 → 无期徒刑.
    r = calculate(defendant("贩卖毒品", drug_grams={"海洛因": Measure(value=2000)}))
    assert r.kind is SentenceKind.LIFE and r.form is SentenceForm.LIFE
    assert r.point_months is None and r.low_months is None and r.high_months is None
    assert r.term_months == -1
    assert r.statutory is not None and r.statutory.max_kind is SentenceKind.DEATH


def test_unknown_drug_is_named_not_guessed() -> None:
    r = calculate(defendant("贩卖毒品", drug_grams={"神秘粉末": Measure(value=5)}))
    assert {"unknown_drug", "missing_quantity"} <= codes(r)
    assert any("神秘粉末" in w.message for w in r.warnings)


# --------------------------------------------------------------------------- traffic


def test_drunk_driving() -> None:
    # 180 mg/100ml: start_point 1 month 拘役; +1 month per 50 mg above 80 → +2 → 3; plea −20% → 2.4.
    d = defendant("危险驾驶", circumstances=(C.PLEA_AGREEMENT,), blood_alcohol_mg_per_100ml=Measure(value=180))
    r = calculate(d)
    assert r.point_months == pytest.approx(2.4)
    assert r.kind is SentenceKind.DETENTION
    assert r.high_months is not None and r.high_months <= 6  # 拘役 stays within 6 months
    assert r.fine_yuan == 4000  # 1500/month × 2.4 = 3600 → 4000


def test_traffic_accident_one_death_with_surrender() -> None:
    # One death: basic tier (拘役…3y); start (1+24)/2 = 12.5; 自首 −20% → 10 months.
    r = calculate(defendant("交通肇事", circumstances=(C.SURRENDER,), deaths=Measure(value=1)))
    assert r.statutory is not None and r.statutory.tier_label == "基本犯"
    assert r.point_months == pytest.approx(10.0)
    assert r.fine_yuan is None


def test_a_second_death_in_intentional_violence_reaches_life() -> None:
    # 故意杀人: start (120+150)/2 = 135; each death beyond the first +72 → 207, past 15 years by the
    # 24-month life margin: 无期徒刑. One death stays a term; mitigation can bring two back to a term.
    one = calculate(defendant("故意杀人", deaths=Measure(value=1)))
    two = calculate(defendant("故意杀人", deaths=Measure(value=2)))
    mitigated = calculate(defendant("故意杀人", circumstances=(C.SURRENDER, C.COMPENSATION, C.FORGIVENESS),
                                    deaths=Measure(value=2)))
    assert one.kind is SentenceKind.FIXED_TERM and one.point_months == pytest.approx(135.0)
    assert two.kind is SentenceKind.LIFE and two.point_months is None
    assert any(s.months == pytest.approx(72.0) and "死亡人数" in s.rule for s in two.steps)
    assert mitigated.kind is SentenceKind.FIXED_TERM
    assert life_rests_on_deaths(two) and not life_rests_on_deaths(one)
    # 故意伤害致人死亡 (start 138) and 抢劫's aggravated tier: the same increment.
    assert calculate(defendant("故意伤害", deaths=Measure(value=2))).kind is SentenceKind.LIFE
    assert calculate(defendant("抢劫", deaths=Measure(value=2))).kind is SentenceKind.LIFE
    # A negligent crime has no such increment: 过失致人死亡 of two is a term.
    assert calculate(defendant("过失致人死亡", deaths=Measure(value=2))).kind is SentenceKind.FIXED_TERM


def test_a_death_by_arson_is_priced_in_article_115() -> None:
    # 刑法第114条 (three to ten years) until a death or a serious injury: then 第115条, ten years to death.
    none = calculate(defendant("放火"))
    dead = calculate(defendant("放火", deaths=Measure(value=1)))
    hurt = calculate(defendant("以危险方法危害公共安全", injuries=[Injury(grade=InjuryGrade.SERIOUS_2)]))
    assert none.statutory.tier_label == "尚未造成严重后果的" and none.point_months < 120
    assert dead.statutory.tier_label == "致人重伤、死亡或者使公私财产遭受重大损失的"
    assert dead.statutory.min_months == 120 and dead.point_months >= 120
    assert hurt.statutory.min_months == 120
    assert calculate(defendant("爆炸", deaths=Measure(value=2))).kind is SentenceKind.LIFE
    # 刑法第119条 for sabotage that kills; 法释〔2015〕22号: three killed in a 重大责任事故 is 情节特别恶劣.
    assert calculate(defendant("破坏交通工具", deaths=Measure(value=1))).statutory.tier_label == "造成严重后果的"
    accident = [calculate(defendant("重大责任事故", deaths=Measure(value=n))).statutory.tier_label for n in (1, 3)]
    assert accident == ["因而发生重大伤亡事故或者造成其他严重后果的", "情节特别恶劣的"]
    assert calculate(defendant("生产、销售有毒、有害食品", deaths=Measure(value=1))).statutory.min_months == 120


def test_a_kidnapping_that_kills_the_hostage_is_life_or_death_not_a_term() -> None:
    # 刑法第239条第2款: 杀害被绑架人的，或者故意伤害被绑架人，致人重伤、死亡的，处无期徒刑或者死刑. It was priced
    # in the basic tier (ten years or more) at eleven years and three months.
    killed = calculate(defendant("绑架", deaths=Measure(value=1)))
    hurt = calculate(defendant("绑架", injuries=[Injury(grade=InjuryGrade.SERIOUS_2)]))
    plain = calculate(defendant("绑架"))
    label = "杀害被绑架人的，或者故意伤害被绑架人，致人重伤、死亡的"
    for r in (killed, hurt):
        assert r.kind is SentenceKind.LIFE and r.point_months is None and r.form is SentenceForm.LIFE
        assert r.statutory.tier_label == label and r.statutory.min_kind is SentenceKind.LIFE
        assert r.statutory.max_kind is SentenceKind.DEATH and r.statutory.min_months is None
        assert any("不得判处有期徒刑" in s.rule for s in r.steps)
    assert plain.kind is SentenceKind.FIXED_TERM and plain.statutory.tier_label == "基本犯"
    # 减轻 (刑法第63条) reaches a term, not below the next tier's floor of ten years.
    for code in (C.SURRENDER, C.ATTEMPT):
        mitigated = calculate(defendant("绑架", circumstances=(code,), deaths=Measure(value=1)))
        assert mitigated.kind is SentenceKind.FIXED_TERM and mitigated.statutory.tier_label == label
        assert 120 <= mitigated.point_months <= 180
    # Beside another charge the death may be that charge's (a defendant's quantities are not told apart
    # by charge): the tier is not selected by it, the prosecutor is told, and a stated tier decides.
    both = calculate(defendant("故意伤害", "绑架", injuries=[Injury(grade=InjuryGrade.SERIOUS_2)]))
    assert both.kind is SentenceKind.FIXED_TERM and "harm_unattributed" in codes(both)
    assert "绑架" in next(w.message for w in both.warnings if w.code == "harm_unattributed")
    stated = Defendant(name="张某", charges=[Charge(name="故意伤害"), Charge(name="绑架", tier=label)],
                       quantities=Quantities(deaths=Measure(value=1)))
    assert calculate(stated).kind is SentenceKind.LIFE
    assert "harm_unattributed" not in codes(killed)


def test_a_hijacking_that_kills_is_death_alone() -> None:
    # 刑法第121条: 致人重伤、死亡或者使航空器遭受严重破坏的，处死刑. 死刑 over any other crime (第69条).
    killed = calculate(defendant("劫持航空器", deaths=Measure(value=1)))
    assert killed.kind is SentenceKind.DEATH and killed.form is SentenceForm.DEATH and killed.term_months == -2
    assert killed.statutory.min_kind is SentenceKind.DEATH and killed.statutory.max_kind is SentenceKind.DEATH
    assert killed.summary_text() == "建议判处死刑"
    assert any("不得判处有期徒刑或者无期徒刑" in s.rule for s in killed.steps)
    assert calculate(defendant("劫持航空器")).statutory.max_kind is SentenceKind.LIFE
    mitigated = calculate(defendant("劫持航空器", circumstances=(C.SURRENDER,), deaths=Measure(value=1)))
    assert mitigated.kind is SentenceKind.FIXED_TERM and 120 <= mitigated.point_months <= 180
    # 拐卖妇女、儿童: 情节特别严重 is 死刑 alone and no quantity selects it; stated, it prevails over a theft.
    stated = Defendant(name="张某", charges=[Charge(name="拐卖妇女、儿童", tier="情节特别严重的"), Charge(name="盗窃")],
                       quantities=Quantities(amount_yuan=amount(5000)))
    both = calculate(stated)
    assert both.kind is SentenceKind.DEATH and any(s.rule == "数罪中有判处死刑的，执行死刑" for s in both.steps)
    top = calculate(defendant("拐卖妇女、儿童", injuries=[Injury(grade=InjuryGrade.SERIOUS_2)]))
    assert top.kind is not SentenceKind.DEATH


def test_facts_the_article_names_select_the_heavier_tier() -> None:
    # 刑法第263条 入户抢劫, 第236条 轮奸, 第292条 持械聚众斗殴: each had been priced in the basic tier.
    from sentencing.case import Aggravation, AggravationCode

    def with_fact(charge: str, code: AggravationCode | None, **quantities: object) -> GuidelineResult:
        d = defendant(charge, **quantities)
        return calculate(d.model_copy(update={"aggravations": [Aggravation(code=code)] if code else []}))

    robbery = with_fact("抢劫", AggravationCode.HOME_INVASION, amount_yuan=amount(3000))
    assert robbery.statutory.min_months == 120 and robbery.point_months >= 120
    assert any("具有法定加重情节“入户抢劫”" in s.rule for s in robbery.steps)
    assert with_fact("抢劫", None, amount_yuan=amount(3000)).statutory.min_months == 36
    assert with_fact("强奸", AggravationCode.GANG_RAPE).statutory.min_months == 120
    assert with_fact("聚众斗殴", AggravationCode.ARMED_AFFRAY).statutory.min_months == 36
    # a fact of another crime selects nothing
    assert with_fact("盗窃", AggravationCode.HOME_INVASION, amount_yuan=amount(3000)).statutory.tier_label == "数额较大"
    # 法释〔2000〕33号 第三条: 肇事后逃逸 aggravates a crime its other facts make (a death), not one it makes
    # (one serious injury and flight is 第二条第二款第六项's crime, in the basic tier)
    fled = with_fact("交通肇事", AggravationCode.HIT_AND_RUN, deaths=Measure(value=1))
    assert fled.statutory.min_months == 36 and "且死亡人数达到1" in fled.steps[0].rule
    hurt = with_fact("交通肇事", AggravationCode.HIT_AND_RUN, injuries=[Injury(grade=InjuryGrade.SERIOUS_2)])
    assert hurt.statutory.tier_label == "基本犯"


def test_tiers_the_derivation_from_article_text_had_missed() -> None:
    # Found by comparing every charge's tiers with its article's. 非法采矿 of 244.75万 (a JuDGE case, sentenced
    # three years) had been priced in 情节严重 (at most three years): 法释〔2016〕25号 makes 50万–150万 情节特别严重.
    mining = calculate(defendant("非法采矿", amount_yuan=amount(2_447_500)))
    assert mining.statutory.tier_label == "情节特别严重的" and mining.statutory.min_months == 36
    assert calculate(defendant("非法采矿", amount_yuan=amount(200_000))).statutory.tier_label == "情节严重的"
    assert calculate(defendant("暴力干涉婚姻自由", deaths=Measure(value=1))).statutory.max_months == 84
    cult = calculate(defendant("组织、利用会道门、邪教组织、利用迷信破坏法律实施"))
    assert cult.statutory.tier_label == "基本犯" and cult.statutory.min_months == 36
    blood = default_catalogue().resolve("非法采集、供应血液、制作、供应血液制品")
    assert [t.max_kind for t in blood.tiers][-1] is SentenceKind.LIFE
    for name in ("擅自设立金融机构", "内幕交易、泄露内幕信息", "商检徇私舞弊", "动植物检疫徇私舞弊",
                 "破坏广播电视设施、公用电信设施"):
        assert len(default_catalogue().resolve(name).tiers) == 2, name


def test_misappropriation_tiers_follow_the_amount() -> None:
    # 法释〔2016〕9号: 挪用公款 of 200万元 is 情节严重 (five years or more); 挪用资金's standard is twice that.
    def floor(charge: str, yuan: float) -> int | None:
        return calculate(defendant(charge, amount_yuan=amount(yuan))).statutory.min_months

    assert [floor("挪用资金", 300_000), floor("挪用资金", 12_900_000)] == [1, 36]
    assert [floor("挪用公款", 300_000), floor("挪用公款", 3_000_000)] == [1, 60]


def test_a_derived_amount_tier_moves_with_the_amount() -> None:
    # 受贿 数额较大或者有其他较重情节 (3万–20万元, 拘役 to three years) is derived: start (1+18.5)/2 = 9.75; a
    # month per (200000−30000)/(36−9.75) = 6476 → 6480元 beyond 30000 (rule set 2026.12.8), at most 26.25.
    def point(yuan: float) -> float | None:
        return calculate(defendant("受贿", amount_yuan=amount(yuan))).point_months

    assert point(30_000) == pytest.approx(9.75)
    assert point(180_000) == pytest.approx(9.75 + 150_000 / 6480)  # 32.9 months, not 9.75 as at 30000
    assert point(199_999) < 36 < point(200_000)  # the next tier: three to ten years
    step = next(s for s in calculate(defendant("受贿", amount_yuan=amount(180_000))).steps if s.stage == "baseline")
    assert step.rule == "犯罪数额超出30000的部分 150000，每6480增加1个月" and step.basis.startswith("derived")


def test_each_charge_is_priced_with_its_own_quantities() -> None:
    # 数罪 whose amounts belong to different crimes (Charge.quantities): 盗窃 of 5,000 in Jiangsu (数额较大 2,000:
    # 6.5 + 3000/2000 = 8.0) beside 诈骗 of 100,000 (数额巨大 65,000: 42 + 35000/6000 = 47.833); 数罪并罚 adds
    # half the lighter one: 51.833. One amount of 105,000 for the defendant priced both in 数额巨大.
    def charge(name: str, yuan: float) -> Charge:
        return Charge(name=name, quantities=Quantities(amount_yuan=amount(yuan)))

    own = calculate(Defendant(name="钱某", charges=[charge("盗窃", 5000), charge("诈骗", 100_000)]), case_in("JS"))
    assert [(c.statutory.tier_label, c.adjusted_months) for c in own.charge_results] == [
        ("数额较大", pytest.approx(8.0)), ("数额巨大或者有其他严重情节", pytest.approx(47.8333, abs=1e-3))]
    assert own.point_months == pytest.approx(47.8333 + 4.0, abs=1e-3)
    shared = calculate(defendant("盗窃", "诈骗", amount_yuan=amount(105_000)), case_in("JS"))
    assert [c.statutory.tier_label for c in shared.charge_results] == ["数额巨大或者有其他严重情节"] * 2
    (w,) = shared.warnings  # and says so, pointing to the way out
    assert w.code == "amount_unattributed" and w.field == "charge_quantities"
    assert w.message.startswith("盗窃罪、诈骗罪：犯罪数额105000元未分罪") and "amount_unattributed" not in codes(own)
    # the defendant's quantities serve a charge without its own
    mixed = defendant("盗窃", "诈骗", amount_yuan=amount(100_000)).model_copy(
        update={"charges": [charge("盗窃", 5000), Charge(name="诈骗")]})
    assert calculate(mixed, case_in("JS")).point_months == pytest.approx(own.point_months)
    # a drug of one charge's own quantities with no conversion standard is named with that charge
    odd = Charge(name="走私、贩卖、运输、制造毒品", quantities=Quantities(drug_grams={"某新型毒品": amount(5)}))
    (w,) = calculate(Defendant(name="钱某", charges=[charge("盗窃", 5000), odd])).warnings[:1]
    assert (w.code, w.field) == ("unknown_drug", "charge_quantities.走私、贩卖、运输、制造毒品.drug_grams")
    assert w.message.startswith("走私、贩卖、运输、制造毒品罪：毒品“某新型毒品”")


# --------------------------------------------------------------------------- fraud


def test_fraud_huge_amount() -> None:
    # No province: national default thresholds (数额巨大 65,000, the midpoint of 3万–10万).
    # Tier 3–10y: start (36+48)/2 = 42; +(100000−65000)/6000 = 5.833 → 47.833; 退赃 −15% → 40.658.
    # Over 3 years → no probation. Fine 0.5 × 100,000 = 50,000.
    r = calculate(defendant("诈骗", circumstances=(C.RESTITUTION,), amount_yuan=amount(100_000)))
    assert r.statutory is not None and r.statutory.min_months == 36 and r.statutory.max_months == 120
    assert r.point_months == pytest.approx(47.8333 * 0.85, abs=1e-3)
    assert not r.probation_eligible and r.form is SentenceForm.CUSTODY
    assert r.fine_yuan == 50000


def test_plea_group_is_capped_at_sixty_percent() -> None:
    # 自首 −20%, 退赃 −15%, 刑事和解 −30% = −65% already; 认罪认罚 adds nothing and the group is
    # brought back to −60%: 47.833 × 0.40 = 19.133 (below the 3-year floor: 自首 allows 减轻).
    r = calculate(
        defendant(
            "诈骗",
            circumstances=(C.SURRENDER, C.RESTITUTION, C.RECONCILIATION, C.PLEA_AGREEMENT),
            amount_yuan=amount(100_000),
        )
    )
    assert r.point_months == pytest.approx(47.8333 * 0.40, abs=1e-3)
    plea = next(s for s in r.steps if s.circumstance is C.PLEA_AGREEMENT)
    assert plea.ratio == 0.0


# --------------------------------------------------------------------------- public order


def test_picking_quarrels_three_times_with_a_prior_record() -> None:
    # 寻衅滋事 basic tier (≤5y): start (1+36)/2 = 18.5; +4 months per occurrence beyond the first → +8 → 26.5;
    # 前科 +5% → 27.825. A prior record → custody. Fine 500/month → 13,912 → 14,000.
    r = calculate(defendant("寻衅滋事", circumstances=(C.PRIOR_RECORD,), occurrences=Measure(value=3)))
    assert r.point_months == pytest.approx(27.825)
    assert r.form is SentenceForm.CUSTODY and r.probation_eligible
    assert r.fine_yuan == 14000


def test_casino_basic_tier() -> None:
    # 开设赌场 (2024 opinion) basic tier: start (1+12)/2 = 6.5; +1 month per 10,000 yuan → +5 → 11.5.
    r = calculate(defendant("开设赌场", amount_yuan=amount(50_000)))
    assert r.point_months == pytest.approx(11.5)


# --------------------------------------------------------------------------- several crimes


def test_two_crimes_combine_between_the_highest_and_the_sum() -> None:
    # One amount for both charges. 盗窃 (JS, 8000): 9.5. 诈骗 on 8,000 (national 数额较大 6,500):
    # 6.5 + 1500/3000 = 7.0. Art. 69: between 9.5 and 16.5; the point takes half the difference:
    # 9.5 + 3.5 = 13.0. Fines add: 8,000 (1× theft amount) + 4,000 (0.5× fraud amount).
    r = calculate(defendant("盗窃", "诈骗", amount_yuan=amount(8000)), case_in("JS"))
    assert [c.adjusted_months for c in r.charge_results] == [pytest.approx(9.5), pytest.approx(7.0)]
    assert r.point_months == pytest.approx(9.5 + 0.5 * 7.0)
    combine = [s for s in r.steps if s.stage == "combine"]
    assert combine and "刑法第69条" in combine[-1].basis
    assert r.statutory is not None and r.statutory.charge == "盗窃"  # the heavier of the two
    assert r.fine_yuan == 8000 + 4000


def test_detention_is_absorbed_by_a_fixed_term() -> None:
    r = calculate(
        defendant("危险驾驶", "盗窃", amount_yuan=amount(8000), blood_alcohol_mg_per_100ml=Measure(value=180)),
        case_in("JS"),
    )
    kinds = [c.kind for c in r.charge_results]
    assert kinds == [SentenceKind.DETENTION, SentenceKind.FIXED_TERM]
    assert r.point_months == pytest.approx(9.5)
    assert any("执行有期徒刑" in s.rule for s in r.steps if s.stage == "combine")


def test_combined_terms_respect_the_twenty_year_cap() -> None:
    # 450,000 yuan: 盗窃 特别巨大 132 + 50000/30000 = 133.67; 诈骗 巨大 42 + 385000/6000 = 106.17;
    # 职务侵占 较大 6.5 + 420000/30000 = 20.5. Sum 260.3 < 35 years → cap 240:
    # 133.67 + 0.5 × (240 − 133.67) = 186.83 — above one crime's 15 years, within the 20-year cap.
    r = calculate(defendant("盗窃", "诈骗", "职务侵占", amount_yuan=amount(450_000)))
    assert r.point_months == pytest.approx(133.6667 + 0.5 * (240 - 133.6667), abs=1e-3)
    assert r.high_months is not None and r.high_months <= 240


# --------------------------------------------------------------------------- unknown input


def test_unknown_charge_gives_a_named_warning_and_a_wider_range() -> None:
    r = calculate(defendant("外星人入侵"))
    assert "unknown_charge" in codes(r)
    w = next(w for w in r.warnings if w.code == "unknown_charge")
    assert w.field == "charges[0]" and "外星人入侵" in w.message
    assert r.point_months is not None and r.band > 0.2


def test_missing_quantity_is_a_warning_not_a_silent_default() -> None:
    r = calculate(defendant("盗窃"))
    w = next(w for w in r.warnings if w.code == "missing_quantity")
    assert w.field == "quantities.amount_yuan"
    assert r.band == pytest.approx(0.3)
    # Absent aggravating facts are not missing facts: a robbery with no injuries warns of nothing.
    assert calculate(defendant("抢劫")).warnings == []


def test_surrender_and_confession_together_are_contradictory() -> None:
    r = calculate(defendant("盗窃", circumstances=(C.SURRENDER, C.CONFESSION), amount_yuan=amount(4000)))
    assert "contradictory_circumstances" in codes(r)
    applied = {s.circumstance for s in r.steps if s.stage == "second_tier"}
    assert C.SURRENDER in applied and C.CONFESSION not in applied


def test_recidivist_juvenile_is_contradictory() -> None:
    r = calculate(defendant("盗窃", circumstances=(C.RECIDIVIST, C.JUVENILE), amount_yuan=amount(4000)))
    w = next(w for w in r.warnings if w.code == "contradictory_circumstances")
    assert "累犯" in w.message and "第65条" in w.message
    assert all(s.circumstance is not C.RECIDIVIST for s in r.steps)


def test_juvenile_flag_against_an_adult_age_is_contradictory() -> None:
    r = calculate(defendant("盗窃", circumstances=(C.JUVENILE,), age=30, amount_yuan=amount(4000)))
    assert "contradictory_circumstances" in codes(r)
    assert all(s.circumstance is not C.JUVENILE for s in r.steps)


def test_no_charges() -> None:
    r = calculate(defendant())
    assert codes(r) == {"no_charges"}
    assert r.point_months is None and r.charge_results == []


def test_derived_charge_is_marked_and_wider() -> None:
    r = calculate(defendant("滥伐林木"))
    assert r.charge_results[0].derived
    assert "derived_rule" in codes(r)
    assert r.band == pytest.approx(0.2 + 0.15)


# --------------------------------------------------------------------------- explanation


def test_explanation_is_ordered_with_bases_and_renders_to_chinese_and_json() -> None:
    d = defendant("盗窃", circumstances=(C.SURRENDER,), role=Role.ACCESSORY, amount_yuan=amount(8000))
    r = calculate(d, case_in("JS"))
    stages = [s.stage for s in r.steps]
    order = ["tier", "starting_point", "baseline", "first_tier", "second_tier", "discretion", "form"]
    assert [s for s in order if s in stages] == order
    assert stages == sorted(stages, key=order.index)
    assert all(s.basis for s in r.steps)
    text = r.explain_text()
    for phrase in ("量刑起点", "基准刑", "从犯", "自首", "依据", "刑法第264条", "规则集版本"):
        assert phrase in text
    again = GuidelineResult.model_validate_json(r.model_dump_json())
    assert again == r
    assert again.ruleset_version == r.ruleset_version


def test_the_outcome_is_never_read() -> None:
    d = defendant("盗窃", amount_yuan=amount(8000))
    with_outcome = d.model_copy(update={"sentence": Sentence(kind=SentenceKind.LIFE)})
    assert calculate(with_outcome).model_dump() == calculate(d).model_dump()
