"""Parsers of judgment text: sections, sentences per defendant, court, defendants, circumstances, quantities.

The texts below are written for these tests in the style of real judgments (no copied judgment).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentencing.case import (
    AggravationCode,
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    CourtLevel,
    Defendant,
    InjuryGrade,
    Measure,
    Quantities,
    Role,
)
from sentencing.guideline import calculate
from sentencing.parsing import extract_defendant_facts, parse_judgment_document, strip_recommendation
from sentencing.parsing.court import parse_court
from sentencing.parsing.judgment import parse_judgment_section
from sentencing.regions import PROVINCES
from sentencing.sentence import Sentence, SentenceKind, format_sentence, parse_sentence
from tests.test_sentence import _sentences

C = CircumstanceCode

DOCUMENT = (
    "张某盗窃一审刑事判决书 江苏省南京市鼓楼区人民法院 刑事判决书 （2018）苏0106刑初101号 "
    "公诉机关南京市鼓楼区人民检察院。 "
    "被告人张某，男，2001年3月5日出生，汉族，初中文化，无业。因涉嫌犯盗窃罪于2018年3月2日被刑事拘留。 "
    "辩护人赵某，某律师事务所律师。 "
    "被告人李某，女，1970年1月2日出生，汉族。曾因犯诈骗罪于2012年5月6日被本院判处有期徒刑二年，2014年4月1日刑满释放。"
    "因涉嫌犯盗窃罪于2018年3月2日被刑事拘留。 "
    "南京市鼓楼区人民检察院以宁鼓检诉刑诉〔2018〕90号起诉书指控被告人张某、李某犯盗窃罪，被告人李某犯掩饰、隐瞒犯罪所得罪，"
    "于2018年5月2日向本院提起公诉。本院依法组成合议庭，公开开庭审理了本案。现已审理终结。 "
    "公诉机关指控：2017年12月1日至2018年2月20日，被告人张某、李某先后5次在本市鼓楼区某小区盗窃电动车，"
    "价值共计人民币1.2万元。被告人李某将其中三辆电动车予以销售。2018年3月2日，被告人张某主动到公安机关投案。"
    "公诉机关认为，被告人张某系自首，建议判处被告人张某有期徒刑一年至一年六个月，并处罚金。"
    "被告人张某、李某对指控事实、罪名及量刑建议没有异议且签字具结。 "
    "本院认为，被告人张某、李某以非法占有为目的，多次秘密窃取他人财物，其行为均已构成盗窃罪，系共同犯罪。"
    "在共同犯罪中，被告人张某起主要作用，系主犯；被告人李某起次要作用，系从犯，依法应当从轻处罚。"
    "被告人张某犯罪后自动投案，如实供述自己的罪行，系自首。被告人李某到案后如实供述自己的罪行，系坦白。"
    "辩护人提出被告人李某系自首的辩护意见，与查明的事实不符，本院不予采纳。被告人李某不属于累犯。"
    "被告人张某犯罪时已满十六周岁不满十八周岁。对被告人张某可以适用缓刑。"
    "依照《中华人民共和国刑法》第二百六十四条、第二十五条、第六十七条之规定，判决如下： "
    "一、被告人张某犯盗窃罪，判处有期徒刑一年，缓刑一年六个月，并处罚金人民币五千元。"
    "（缓刑考验期限，从判决确定之日起计算。） "
    "二、被告人李某犯盗窃罪，判处有期徒刑八个月，并处罚金人民币3000元；犯掩饰、隐瞒犯罪所得罪，判处拘役三个月，"
    "并处罚金人民币1000元；决定执行有期徒刑八个月，并处罚金人民币4000元。 "
    "如不服本判决，可在接到判决书的第二日起十日内，通过本院或者直接向江苏省南京市中级人民法院提出上诉。 "
    "审判长某某 二〇一八年六月一日 书记员某某"
)


@pytest.fixture(scope="module")
def case() -> Case:
    return parse_judgment_document(DOCUMENT, case_id="test:1")


def _defendant(case: Case, name: str) -> Defendant:
    return next(d for d in case.defendants if d.name == name)


def test_document_court_and_dates(case: Case) -> None:
    assert case.court is not None
    assert case.court.name == "江苏省南京市鼓楼区人民法院"
    assert (case.province, case.court.city, case.court.level) == ("JS", "南京市", CourtLevel.BASIC)
    assert case.case_number == "（2018）苏0106刑初101号"
    assert case.date == dt.date(2018, 6, 1)
    evidence = case.court.evidence
    assert evidence is not None and DOCUMENT[evidence.start:evidence.end] == case.court.name


def test_document_sentences_per_defendant(case: Case) -> None:
    zhang, li = _defendant(case, "张某"), _defendant(case, "李某")
    assert zhang.sentence == Sentence(kind=SentenceKind.FIXED_TERM, months=12, probation_months=18, fine_yuan=5000)
    assert li.sentence == Sentence(kind=SentenceKind.FIXED_TERM, months=8, fine_yuan=4000)
    assert [(c.charge, c.sentence.months) for c in li.charge_sentences] == [("盗窃", 8), ("掩饰、隐瞒犯罪所得", 3)]
    assert li.charge_sentences[1].sentence.kind is SentenceKind.DETENTION
    assert zhang.sentence_evidence is not None
    assert case.judgment[zhang.sentence_evidence.start:zhang.sentence_evidence.end] == zhang.sentence_evidence.text


def test_document_indicted_charges(case: Case) -> None:
    assert _defendant(case, "张某").charge_names == ["盗窃"]
    assert _defendant(case, "李某").charge_names == ["盗窃", "掩饰、隐瞒犯罪所得"]


def test_document_roles_and_circumstances(case: Case) -> None:
    zhang, li = _defendant(case, "张某"), _defendant(case, "李某")
    assert zhang.role is Role.PRINCIPAL and li.role is Role.ACCESSORY
    assert {C.SURRENDER, C.JUVENILE, C.PLEA_AGREEMENT} <= zhang.circumstance_codes
    assert C.CONFESSION not in zhang.circumstance_codes  # its 如实供述 is part of the 自首
    assert {C.CONFESSION, C.PRIOR_RECORD, C.PLEA_AGREEMENT} <= li.circumstance_codes
    assert C.SURRENDER not in li.circumstance_codes  # the defence claimed it; the court rejected it
    assert C.RECIDIVIST not in li.circumstance_codes  # 不属于累犯
    assert zhang.age == 16
    for d in (zhang, li):
        for c in d.circumstances:
            assert c.evidence is not None
            if c.evidence.source == "facts":
                assert case.facts[c.evidence.start:c.evidence.end] == c.evidence.text
            elif c.evidence.source == "reasoning":
                assert case.reasoning[c.evidence.start:c.evidence.end] == c.evidence.text


def test_document_quantities(case: Case) -> None:
    q = _defendant(case, "张某").quantities
    assert q.amount_yuan is not None and q.amount_yuan.value == 12000
    assert q.occurrences is not None and q.occurrences.value == 5


def test_model_inputs_hold_no_outcome(case: Case) -> None:
    assert "建议判处" not in case.facts and "一年六个月" not in case.facts
    assert "签字具结" in case.facts  # what is true about the defendant stays
    assert "缓刑" not in case.reasoning and "判决如下" not in case.reasoning
    assert "判处" not in case.reasoning
    assert "累犯" in case.reasoning
    blind = case.before_judgment()
    assert blind.judgment == "" and all(d.sentence is None and not d.charge_sentences for d in blind.defendants)
    assert case.judgment and any(d.sentence is not None for d in case.defendants)  # the original keeps its outcome
    assert blind.before_judgment() is blind  # nothing left to strip: no copy


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("被告人王某犯故意杀人罪，判处死刑，缓期二年执行，剥夺政治权利终身。",
         Sentence(kind=SentenceKind.DEATH_SUSPENDED, political_rights_for_life=True)),
        ("被告人王某犯抢劫罪，判处无期徒刑，剥夺政治权利终身，并处没收个人全部财产。",
         Sentence(kind=SentenceKind.LIFE, political_rights_for_life=True, confiscation=True)),
        ("被告人王某犯开设赌场罪，判处管制一年，并处罚金人民币二万元。",
         Sentence(kind=SentenceKind.SURVEILLANCE, months=12, fine_yuan=20000)),
        ("被告人王某犯危险驾驶罪，免予刑事处罚。", Sentence(kind=SentenceKind.EXEMPT)),
        ("被告人王某犯盗窃罪，单处罚金人民币３０００元。", Sentence(kind=SentenceKind.FINE_ONLY, fine_yuan=3000)),
        ("被告人王某犯开设赌场罪，判处拘役三个月，缓刑四个月，并处罚金0.5万元。",
         Sentence(kind=SentenceKind.DETENTION, months=3, probation_months=4, fine_yuan=5000)),
        ("被告人王某犯贩卖毒品罪，判处有期徒刑1年6个月，并处罚金人民币2，000元。",
         Sentence(kind=SentenceKind.FIXED_TERM, months=18, fine_yuan=2000)),
    ],
)
def test_judgment_section_forms(section: str, expected: Sentence) -> None:
    (outcome,) = parse_judgment_section(section)
    assert outcome.name == "王某"
    assert outcome.sentence == expected


def test_prior_sentence_merged_in_is_not_a_crime_of_this_case() -> None:
    (outcome,) = parse_judgment_section(
        "被告人王某犯强奸罪，判处有期徒刑四年七个月，与原犯强奸罪，判处有期徒刑二年四个月，两罪并罚，决定执行有期徒刑六年六个月。"
    )
    assert [(c.charge, c.sentence.months) for c in outcome.crimes] == [("强奸", 55)]
    assert outcome.sentence == Sentence(kind=SentenceKind.FIXED_TERM, months=78)


def test_appeal_items_that_quash_or_uphold_are_skipped() -> None:
    (outcome,) = parse_judgment_section(
        "一、撤销某县人民法院（2019）某0105刑初1号刑事判决，即：被告人董某犯危险驾驶罪，判处拘役二个月，并处罚金人民币三千元。"
        " 二、上诉人（原审被告人）董某犯危险驾驶罪，判处拘役二个月，缓刑三个月，并处罚金人民币三千元。"
    )
    assert outcome.name == "董某"
    assert outcome.sentence == Sentence(kind=SentenceKind.DETENTION, months=2, probation_months=3, fine_yuan=3000)


def test_several_crimes_without_execution_line_is_reported() -> None:
    (outcome,) = parse_judgment_section("被告人王某犯盗窃罪，判处有期徒刑一年；犯诈骗罪，判处有期徒刑二年。")
    assert outcome.sentence is None and len(outcome.crimes) == 2
    assert "决定执行" in outcome.problems[0]


# Short procedural headers, common in appeals and summary judgments: the parties are named only in
# passing, so a name must stop where the procedure's words begin.
_SHORT_HEADERS = [
    ("某某县人民法院审理某某县人民检察院指控原审被告人韩某某犯寻衅滋事罪、妨害公务罪一案，于2017年12月21日作出"
     "（2017）冀1003刑初1号刑事判决。原审被告人韩某某不服，提出上诉。本院依法组成合议庭。现已审理终结。",
     {"韩某某": ["寻衅滋事", "妨害公务"]}),
    ("某某区人民检察院以某检刑诉〔2016〕1号起诉书指控被告人叶某某犯信用卡诈骗罪，于2016年3月7日提起公诉。"
     "本院依法组成合议庭，公开开庭审理了本案。被告人叶某某到庭参加了诉讼。本案现已审理终结。",
     {"叶某某": ["信用卡诈骗"]}),
    ("某某区人民检察院指控被告人彭某、李某犯生产、销售有毒、有害食品罪，于2019年7月16日向本院提起公诉。"
     "被告人彭某及其辩护人王某、被告人李某到庭参加诉讼。现已审理终结。",
     {"彭某": ["生产、销售有毒、有害食品"], "李某": ["生产、销售有毒、有害食品"]}),
    ("某某县人民检察院指控原审被告人曾某犯故意伤害罪、原审附带民事诉讼原告人曾某1提起附带民事诉讼一案，作出刑事附带民事"
     "判决。原审被告人曾某对刑事部分判决不服，提出上诉。现已审理终结。",
     {"曾某": ["故意伤害"]}),
    ("某某市人民检察院以某检诉刑诉〔2018〕600号起诉书指控被告单位某某化工有限公司（以下简称某某公司）、被告人徐某犯非法经营罪，"
     "于2018年12月12日向本院提起公诉。被告单位某某公司诉讼代表人赵某、被告人徐某及其辩护人沈某到庭参加诉讼。现已审理终结。",
     {"某某公司": ["非法经营"], "徐某": ["非法经营"]}),
    ("某某县人民检察院以某检公诉刑诉（2020）9号起诉书指控被告人韦某涉嫌盗伐林木罪，于2020年3月17日向本院提起公诉。"
     "被告人韦某到庭参加诉讼。现已审理终结。",
     {"韦某": ["盗伐林木"]}),
    ("某某县人民检察院以某检公诉刑诉（2019）36号起诉书指控被告人罗某、王某涉嫌寻衅滋事、故意伤害、开设赌场罪，"
     "于2019年9月9日向本院提起公诉。被告人罗某、王某到庭参加诉讼。现已审理终结。",
     {"罗某": ["寻衅滋事", "故意伤害", "开设赌场"], "王某": ["寻衅滋事", "故意伤害", "开设赌场"]}),
    ("自诉人刘某以被告人陆某犯拒不执行判决、裁定罪，于2017年2月4日向本院提起控诉。本院受理后，依法实行独任审判。"
     "自诉人刘某、被告人陆某到庭参加诉讼。现已审理终结。",
     {"陆某": ["拒不执行判决、裁定"]}),
    ("某某县人民法院审理某某县人民检察院指控原审被告人王某、姜某犯诈骗罪、王某犯行贿罪、妨害作证罪一案，作出刑事判决。"
     "原审被告人王某、姜某不服，提出上诉。现已审理终结。",
     {"王某": ["诈骗", "行贿", "妨害作证"], "姜某": ["诈骗"]}),
    ("某某区人民法院审理某某区人民检察院指控被告人伍某、陈某犯组织卖淫罪、指控被告人梁某犯容留卖淫罪一案，作出刑事判决。"
     "原审被告人陈某不服，提出上诉。现已审理终结。",
     {"伍某": ["组织卖淫"], "陈某": ["组织卖淫"], "梁某": ["容留卖淫"]}),
    ("某某县人民检察院以某检公诉刑诉（2016）第19号起诉书指控被告人李某某犯挪用公款罪、贪污罪和被告人崔某犯贪污罪，"
     "于2016年3月7日向本院提起公诉。被告人李某某及其辩护人张某，被告人崔某到庭参加诉讼。现已审理终结。",
     {"李某某": ["挪用公款", "贪污"], "崔某": ["贪污"]}),
    ("某某县人民法院审理某某县人民检察院指控原审被告人耿某犯敲诈勒索罪、犯寻衅滋事罪、原审被告人刘某犯寻衅滋事罪一案，"
     "作出刑事判决。原审被告人耿某不服，提出上诉。现已审理终结。",
     {"耿某": ["敲诈勒索", "寻衅滋事"], "刘某": ["寻衅滋事"]}),
    ("某某县人民检察院指控原审被告人崔某、唐某犯组织卖淫罪、孟某、朱某甲犯协助组织卖淫罪、王某犯掩饰、隐瞒犯罪所得罪一案，"
     "作出刑事判决。原审被告人崔某不服，提出上诉。现已审理终结。",
     {"崔某": ["组织卖淫"], "唐某": ["组织卖淫"], "孟某": ["协助组织卖淫"], "朱某甲": ["协助组织卖淫"],
      "王某": ["掩饰、隐瞒犯罪所得"]}),
    # No verb before the charge: nobody named 王某乙掩饰 is made up, and the charge is not guessed.
    ("某某县人民检察院以某检刑诉（2014）第18号起诉书指控被告人郭某甲犯盗窃罪，被告人王某乙掩饰犯罪所得罪一案，"
     "于2014年3月19日向本院提起公诉。被告人郭某甲到庭参加了诉讼。现已审理终结。",
     {"郭某甲": ["盗窃"]}),
]


@pytest.mark.parametrize(("procedure", "expected"), _SHORT_HEADERS,
                         ids=[f"short-{i}" for i in range(len(_SHORT_HEADERS))])
def test_parties_named_in_passing_in_a_short_procedural_header(procedure: str, expected: dict) -> None:
    text = ("某某人民法院 刑事判决书 （2019）苏0106刑初1号 " + procedure
            + " 经审理查明：2018年5月，被告人在本市实施了上述行为。本院认为，被告人的行为已构成犯罪。判决如下：")
    case = parse_judgment_document(text, case_id="short")
    assert {d.name: d.charge_names for d in case.defendants} == expected


_NAMES = ["张某", "李某甲", "王某某"]
_CHARGES = ["盗窃", "掩饰、隐瞒犯罪所得", "走私、贩卖、运输、制造毒品"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(_sentences, min_size=1, max_size=3), _sentences), min_size=1, max_size=3),
       st.booleans(), st.booleans())
def test_judgment_section_round_trip(people: list, arabic: bool, numbered: bool) -> None:
    """A 判决如下 section written from random sentences reads back to the same sentences."""
    lines = []
    for k, (crimes, combined) in enumerate(people):
        parts = [f"犯{_CHARGES[j]}罪，判处{format_sentence(s, arabic=arabic)}" for j, s in enumerate(crimes)]
        line = f"被告人{_NAMES[k]}" + "；".join(parts)
        if len(crimes) > 1:
            line += f"；决定执行{format_sentence(combined, arabic=arabic)}"
        prefix = "一二三"[k] + "、" if numbered else ""
        lines.append(prefix + line + "。")
    outcomes = parse_judgment_section(" ".join(lines))
    assert [o.name for o in outcomes] == _NAMES[: len(people)]
    for outcome, (crimes, combined) in zip(outcomes, people, strict=True):
        assert [c.sentence for c in outcome.crimes] == crimes
        assert [c.charge for c in outcome.crimes] == _CHARGES[: len(crimes)]
        assert outcome.sentence == (combined if len(crimes) > 1 else crimes[0])


@pytest.mark.parametrize("province", PROVINCES, ids=lambda p: p.code)
def test_province_from_every_case_number_abbreviation(province) -> None:
    text = f"某某人民法院 刑事判决书 （2018）{province.abbreviation}0101刑初1号 公诉机关某某人民检察院。"
    court, number = parse_court(text)
    assert number is not None and number.province == province.code
    assert court is not None and court.province == province.code


@pytest.mark.parametrize(
    ("text", "province", "level"),
    [
        ("河南省睢县人民法院 刑事判决书 （2013）睢刑初字第183号 公诉机关睢县人民检察院", "HA", CourtLevel.BASIC),
        ("南阳市卧龙区人民法院 刑事判决书 （2013）宛龙刑初字第41号", "HA", CourtLevel.BASIC),
        ("舞钢市人民法院 刑事判决书 （2014）舞刑初字第39号 公诉机关：河南省舞钢市人民检察院。", "HA", CourtLevel.BASIC),
        ("托克托县人民法院 刑事判决书 （2018）托刑初72号 公诉机关托克托县人民检察院。 …… "
         "通过本院或者直接向内蒙古自治区呼和浩特市中级人民法院提出上诉。", "NM", CourtLevel.BASIC),
        ("山东省潍坊市中级人民法院 刑事判决书 （2015）潍刑二终字第188号", "SD", CourtLevel.INTERMEDIATE),
        ("新疆生产建设兵团芳草湖垦区人民法院 刑事判决书 （2019）兵0603刑初26号", "XJB", CourtLevel.BASIC),
        ("内蒙古自治区乌审旗人民法院 刑事判决书 （2016）内0626刑初50号", "NM", CourtLevel.BASIC),
    ],
)
def test_province_without_abbreviation(text: str, province: str, level: CourtLevel) -> None:
    court, _ = parse_court(text)
    assert court is not None and court.province == province and court.level is level


def test_case_title_before_the_court_without_a_space() -> None:
    court, _ = parse_court("被告人刘某贩卖毒品罪一案的刑事判决书南京市鼓楼区人民法院刑事判决书（2017）苏0106刑初428号")
    assert court is not None and court.name == "南京市鼓楼区人民法院" and court.province == "JS"


def _facts_case(facts: str, *names: str, reasoning: str = "") -> Case:
    return Case(id="t", facts=facts, reasoning=reasoning, defendants=[Defendant(name=n) for n in names])


def test_an_amount_belongs_to_the_seller_not_to_those_sold_to() -> None:
    """A JuDGE judgment: the seller's 52万 had gone to the three dealers named as buyers, and the seller had none."""
    case = extract_defendant_facts(_facts_case(
        "被告人李杰将拼装的电视机以人民币170元至310元不等的价格推销给被告人李某甲、蒋某甲等个体家电经营商，"
        "共计销售拼装电视机3100余台，销售金额人民币52万余元。其中，被告人李某甲销售拼装电视机1000余台，"
        "销售金额人民币17万余元；被告人蒋某甲销售拼装电视机600余台，销售金额人民币10万余元。",
        "李杰", "李某甲", "蒋某甲",
    ))
    assert [d.quantities.amount_yuan.value for d in case.defendants] == [520000, 170000, 100000]


def _charged(facts: str, name: str, *charges: str, **fields: object) -> Defendant:
    case = Case(id="t", facts=facts, defendants=[Defendant(name=name, charges=[Charge(name=c) for c in charges],
                                                           **fields)])
    return extract_defendant_facts(case).defendants[0]


def _own_amounts(d: Defendant) -> dict[str, float | None]:
    return {c.name: c.quantities.amount_yuan.value if c.quantities and c.quantities.amount_yuan else None
            for c in d.charges if c.quantities is not None}


def test_each_of_several_charges_an_amount_prices_gets_the_amount_told_with_its_act() -> None:
    """数罪: 受贿 of 28,000 yuan beside 诈骗 of 300,000 had both been priced with 300,000 (the defendant's one
    amount). Each charge now carries the amount told with its own act (收受, 骗取), the rest of the
    defendant's quantities with it, and the guideline prices each with its own and no longer warns."""
    facts = ("被告人周某在担任某镇干部期间，收受他人财物人民币28000元。"
             "周某又虚构事实，多次骗取钱某人民币30万元，用于个人挥霍。")
    d = _charged(facts, "周某", "受贿", "诈骗")
    assert _own_amounts(d) == {"受贿": 28000, "诈骗": 300000}
    assert d.quantities.amount_yuan.value == 300000  # the defendant's own is unchanged
    bribe = d.charges[0].quantities
    assert bribe is not None and bribe.amount_yuan.evidence is not None and "28000元" in bribe.amount_yuan.evidence.text
    result = calculate(d)
    assert "amount_unattributed" not in {w.code for w in result.warnings}
    alone = calculate(d.model_copy(update={"charges": [Charge(name="受贿"), Charge(name="诈骗")]}))
    assert "amount_unattributed" in {w.code for w in alone.warnings}
    assert result.point_months < alone.point_months  # 受贿 no longer priced at 300,000
    # an act told after the amount, in its clause: ``…的电机一台被盗走`` is theft's
    d = _charged("被告人孙某在某厂将价值人民币4500元的电机一台盗走。孙某又以曝光隐私相要挟，勒索吴某人民币2万元。",
                 "孙某", "盗窃", "敲诈勒索")
    assert _own_amounts(d) == {"盗窃": 4500, "敲诈勒索": 20000}


@pytest.mark.parametrize(
    ("facts", "charges"),
    [
        # one act word two of the charges share (骗取: 诈骗 and 合同诈骗): no charge's
        ("被告人郑某骗取冯某人民币5万元。郑某在签订合同过程中骗取某公司货款人民币20万元。", ("诈骗", "合同诈骗")),
        # the second charge's amount is told with no act of its own: the one amount prices both, as before
        ("被告人郑某窃取冯某手机一部，价值人民币3000元。郑某后得款人民币2万元。", ("盗窃", "敲诈勒索")),
        # every charge's amount comes to the same: nothing to tell apart
        ("被告人郑某窃取冯某财物价值人民币3000元，又抢夺其现金人民币3000元。", ("盗窃", "抢夺")),
        # one charge an amount prices: its amount is the defendant's
        ("被告人郑某窃取冯某财物价值人民币3000元，后将冯某打致轻伤。", ("盗窃", "故意伤害")),
    ],
)
def test_amounts_stay_the_defendants_unless_each_priced_charge_has_one(facts: str, charges: tuple[str, ...]) -> None:
    d = _charged(facts, "郑某", *charges)
    assert _own_amounts(d) == {}
    assert d.quantities.amount_yuan is not None


def test_amounts_given_are_not_read_again() -> None:
    """A defendant sent with quantities keeps them, and its charges get none from the texts."""
    d = _charged("被告人周某收受他人财物人民币28000元。周某骗取钱某人民币30万元。", "周某", "受贿", "诈骗",
                 quantities=Quantities(amount_yuan=Measure(value=50000)))
    assert _own_amounts(d) == {} and d.quantities.amount_yuan.value == 50000


def test_a_name_that_modifies_a_noun_is_no_subject() -> None:
    """As in two JuDGE/LeCaRDv2 sentences: the fraud of 王×1 and 范× ran in a shop 王×1所经营的, and 范× had no
    amount; 赵立新 surrendered after 周强的预警, and 周强 was given the surrender."""
    case = extract_defendant_facts(_facts_case(
        "被告人王×1、范×在某网络购物平台上王×1所经营的店铺内虚假购物、赚取积分，并通过返现金的形式，"
        "骗取某电子商务有限公司人民币136052.5元。被告人赵立新在得到被告人周强的预警后逃离现场，次日到派出所投案自首。",
        "王×1", "范×", "赵立新", "周强",
    ))
    wang, fan, chen, liu = case.defendants
    assert wang.quantities.amount_yuan.value == fan.quantities.amount_yuan.value == 136052.5
    assert C.SURRENDER in chen.circumstance_codes and C.SURRENDER not in liu.circumstance_codes


def test_what_the_court_holds_outranks_a_denial_in_an_argument_it_rejects() -> None:
    """JuDGE: the court held 犯罪预备 in its own words and named it again while rejecting the defence's
    犯罪中止; the rejected sentence had taken 犯罪预备 away. A sentence that asserts and denies at once
    (``主动投案，虽…不构成自首``) still denies, and what was not obtained at some length is not had."""
    (d,) = extract_defendant_facts(_facts_case(
        "被告人余某欲趁被害人熟睡之际伺机强奸，后因被被害人发现而爬窗离开。", "余某",
        reasoning="本院认为，被告人余某为实施犯罪制造条件，系犯罪预备，可以比照既遂犯减轻处罚。辩护人提出被告人余某属犯罪中止，"
                  "经查，本案的犯罪形态属于犯罪预备而非犯罪中止，该辩护意见，本院不予采纳。",
    )).defendants
    assert C.PREPARATION in d.circumstance_codes and C.DISCONTINUATION not in d.circumstance_codes
    (w,) = extract_defendant_facts(_facts_case(
        "被告人郑远航到公安机关投案。", "郑远航",
        reasoning="被告人郑远航主动到案，虽因否认主要犯罪事实，不构成自首，但客观上节约了司法资源，可酌情从轻处罚。",
    )).defendants
    assert C.SURRENDER not in w.circumstance_codes
    (x,) = extract_defendant_facts(_facts_case("被告人李某案发后没有取得被害人家属的谅解。", "李某")).defendants
    assert C.FORGIVENESS not in x.circumstance_codes


def test_a_note_in_brackets_about_another_person_is_not_the_defendants() -> None:
    """As in a JuDGE judgment: 被告人某伙同方某（系未成年人，分案处理）… had given the adult defendant 未成年人
    (减轻, no death)."""
    (d,) = extract_defendant_facts(_facts_case(
        "被告人邵天明伙同方某（系未成年人，分案处理）强行与被害人发生性关系。到案后，被告人邵天明如实供述了自己的罪行。",
        "邵天明",
    )).defendants
    assert C.JUVENILE not in d.circumstance_codes and C.CONFESSION in d.circumstance_codes
    (e,) = extract_defendant_facts(_facts_case("被告人李某（系未成年人）伙同他人盗窃。", "李某")).defendants
    assert C.JUVENILE in e.circumstance_codes
    two = extract_defendant_facts(_facts_case("被告人张某（系累犯）伙同被告人李某、方某（另案处理）盗窃。",
                                              "张某", "李某"))
    assert C.RECIDIVIST in two.defendants[0].circumstance_codes
    assert C.RECIDIVIST not in two.defendants[1].circumstance_codes


def test_facts_that_select_a_heavier_tier() -> None:
    """入户抢劫, 轮奸 (a JuDGE text: 强行轮流与张某发生性关系), 持械聚众斗殴: read for the crime they aggravate,
    not where denied, nor for a defendant charged with another crime."""
    A = AggravationCode

    def aggravations(facts: str, charge: str, reasoning: str = "") -> set[AggravationCode]:
        case = _facts_case(facts, "甲某", reasoning=reasoning)
        case = case.model_copy(update={"defendants": [Defendant(name="甲某", charges=[Charge(name=charge)])]})
        return extract_defendant_facts(case).defendants[0].aggravation_codes

    assert aggravations("被告人甲某持刀入户抢劫现金3000元。", "抢劫") == {A.HOME_INVASION}
    assert aggravations("被告人甲某伙同方某强行轮流与被害人发生性关系。", "强奸") == {A.GANG_RAPE}
    assert aggravations("被告人甲某纠集多人持械聚众斗殴。", "聚众斗殴") == {A.ARMED_AFFRAY}
    assert aggravations("被告人甲某持械积极参加聚众斗殴。", "聚众斗殴") == {A.ARMED_AFFRAY}  # a JuDGE court's words
    assert aggravations("被告人甲某纠集多人持械聚众斗殴，致一人重伤。", "故意伤害") == set()
    assert aggravations("被告人甲某进入被害人经营的商店抢劫。", "抢劫",
                        reasoning="被告人甲某进入的系商店，不属于入户抢劫。") == set()
    # 肇事后逃逸; not the article's words a court quotes, nor a driver who reported and went to surrender
    assert aggravations("被告人甲某驾车撞倒行人后驾车逃逸，被害人经抢救无效死亡。", "交通肇事") == {A.HIT_AND_RUN}
    quoted = "依照“交通运输肇事后逃逸或者有其他特别恶劣情节的，处三年以上七年以下有期徒刑”的规定。"
    assert aggravations("被告人甲某驾车撞倒行人。", "交通肇事", reasoning=quoted) == set()
    assert aggravations("被告人甲某驾车撞倒行人，报警后离开现场到交警大队投案。", "交通肇事") == set()


def test_circumstance_attribution_in_multi_defendant_text() -> None:
    case = extract_defendant_facts(_facts_case(
        "被告人张某、李某到案后如实供述，具有坦白情节。被告人王某系从犯。被告人王某曾因犯盗窃罪被判处有期徒刑一年，"
        "刑满释放后五年内又犯罪，系累犯。被告人张某已赔偿被害人损失并取得谅解。",
        "张某", "李某", "王某",
    ))
    zhang, li, wang = case.defendants
    assert C.CONFESSION in zhang.circumstance_codes and C.CONFESSION in li.circumstance_codes
    assert C.CONFESSION not in wang.circumstance_codes
    assert wang.role is Role.ACCESSORY and zhang.role is Role.SOLE
    assert C.RECIDIVIST in wang.circumstance_codes and C.RECIDIVIST not in zhang.circumstance_codes
    assert {C.COMPENSATION, C.FORGIVENESS} <= zhang.circumstance_codes
    assert C.FORGIVENESS not in li.circumstance_codes


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("被告人张某不构成自首。", C.SURRENDER),
        ("被告人张某不属于累犯。", C.RECIDIVIST),
        ("被告人张某无前科。", C.PRIOR_RECORD),
        ("被告人张某未取得被害人谅解。", C.FORGIVENESS),
        ("辩护人提出被告人张某系自首的辩护意见，经查，与事实不符，本院不予采纳。", C.SURRENDER),
        ("被告人张某的辩护人提出“张某应认定为犯罪中止”的辩护意见。经查，张某已着手实行。故该辩护意见本院不予采纳。",
         C.DISCONTINUATION),
        ("责令被告人张某退赔被害人损失。", C.RESTITUTION),
        # A victim's suicide attempt is no attempted crime of the defendant's.
        ("被告人张某多次向被害人索要钱财。次日，被害人迫于心理压力跳桥自杀未遂。", C.ATTEMPT),
        # Items of a numbered defence argument are claims, as its lead-in says, until the court accepts them.
        ("被告人张某及其辩护人的上诉及辩护意见为：一、原判认定的数额有误。二、有四万元由他人控制，该部分应认定为犯罪未遂。"
         "三、张某认罪态度好。综上，请求从轻处罚。", C.ATTEMPT),
        ("被告人张某的辩护人辩称:1.被告人张某具有自首情节。2.被告人具有立功表现，在抗洪抢险中表现突出。"
         "综上，建议从轻处罚。", C.MERITORIOUS),
    ],
)
def test_negated_circumstances_are_dropped(text: str, absent: CircumstanceCode) -> None:
    (d,) = extract_defendant_facts(_facts_case("被告人张某到案。", "张某", reasoning=text)).defendants
    assert absent not in d.circumstance_codes


def test_rejected_accessory_claim_leaves_the_role_alone() -> None:
    case = extract_defendant_facts(_facts_case(
        "被告人张某、李某共同盗窃。", "张某", "李某",
        reasoning="对辩护人提出李某系从犯的辩护意见，本院不予采纳。在容留卖淫的共同犯罪中，二被告人作用相当，不必区分主从犯。",
    ))
    assert [d.role for d in case.defendants] == [Role.SOLE, Role.SOLE]


def test_extract_keeps_what_is_already_structured() -> None:
    given_circumstance = Circumstance(code=C.MERITORIOUS)
    case = Case(id="t", facts="被告人张某系自首。", defendants=[
        Defendant(name="张某", circumstances=[given_circumstance], role=Role.ACCESSORY),
    ])
    (d,) = extract_defendant_facts(case).defendants
    assert d.circumstances == [given_circumstance] and d.role is Role.ACCESSORY


def test_age_circumstances_from_a_given_age() -> None:
    people = [Defendant(name="张某", age=76), Defendant(name="李某", age=15)]
    case = Case(id="t", facts="被告人张某盗窃。", defendants=people)
    zhang, li = extract_defendant_facts(case).defendants
    assert C.ELDERLY in zhang.circumstance_codes and C.JUVENILE in li.circumstance_codes


@pytest.mark.parametrize(
    ("facts", "check"),
    [
        ("被告人张某先后三次贩卖甲基苯丙胺共计5.6克、海洛因0.5克。",
         lambda q: q.drug_grams["甲基苯丙胺"].value == 5.6 and q.drug_grams["海洛因"].value == 0.5
         and q.occurrences.value == 3),
        # the weight before its drug; the drug before its weight; each weight of a list its own drug
        ("被告人张某在出租屋内向吸毒人员王某贩卖3小包共计2.36克甲基苯丙胺（冰毒），收取毒资1500元。",
         lambda q: q.drug_grams["甲基苯丙胺"].value == 2.36),
        ("被告人张某以80元的价格把净重为0.06克的海洛因卖给吸毒人员刘某。",
         lambda q: q.drug_grams["海洛因"].value == 0.06),
        ("被告人张某把净重0.21克的海洛因和净重0.45克的甲基苯丙胺一并卖给周某。",
         lambda q: q.drug_grams["海洛因"].value == 0.21 and q.drug_grams["甲基苯丙胺"].value == 0.45),
        ("民警在其住处搜出净重为12.8克的毒品海洛因疑似物两根和净重为9.6克的毒品麻古疑似物90颗。",
         lambda q: q.drug_grams["海洛因"].value == 12.8 and q.drug_grams["甲基苯丙胺片剂"].value == 9.6),
        ("被告人张某贩卖甲基苯丙胺片剂2粒及1.5克氯胺酮。", lambda q: list(q.drug_grams) == ["氯胺酮"]),
        ("被告人张某把1小包甲基苯丙胺（净重0.4克）卖给李某。", lambda q: q.drug_grams["甲基苯丙胺"].value == 0.4),
        # a substance weighed before the text names the one drug found in it; a weight of something else is none
        ("被告人张某将1包净重3.75克的白色晶体卖给赵某。随后民警在其车内搜出白色晶体2包（合计净重1.42克）。"
         "经鉴定，上述三包白色晶体中均检出甲基苯丙胺成分。", lambda q: q.drug_grams["甲基苯丙胺"].value == 3.75),
        ("被告人张某盗窃黄金项链一条（重10克），价值3000元。经鉴定，其尿液检出甲基苯丙胺。",
         lambda q: not q.drug_grams),
        ("被告人张某把一小包重0.62克的白色粉末和一小包重1.1克的白色晶体卖给王某。经检验，白色粉末检出海洛因，"
         "白色晶体检出甲基苯丙胺。", lambda q: not q.drug_grams),  # which weight is which drug is not said
        ("民警查获海洛因0.5克甲基苯丙胺1.2克。",
         lambda q: q.drug_grams["海洛因"].value == 0.5 and q.drug_grams["甲基苯丙胺"].value == 1.2),
        ("经鉴定，被告人张某血液中乙醇含量为2.47毫克／毫升。", lambda q: q.blood_alcohol_mg_per_100ml.value == 247),
        ("经鉴定，被告人张某血液中酒精含量为183.5mg/100ml。", lambda q: q.blood_alcohol_mg_per_100ml.value == 183.5),
        ("被告人张某持刀捅刺，致二人轻伤二级、一人轻微伤。",
         lambda q: [(i.grade, i.count) for i in q.injuries] == [(InjuryGrade.MINOR, 1), (InjuryGrade.LIGHT_2, 2)]),
        ("被告人张某驾车撞击行人，致一人死亡。", lambda q: q.deaths.value == 1),
        # a killing verb's death, with its count; a death only weighed, intended, quoted, supposed, or an animal's
        ("被告人张某因琐事持刀将被害人李某、王某二人刺死。", lambda q: q.deaths.value == 2),
        ("被告人张某将被害人殴打致死。", lambda q: q.deaths.value == 1),
        ("被告人张某砍击幼童要害部位，其行为足以致人死亡，对致人死亡这一后果持放任态度。",
         lambda q: q.deaths is None),
        ("被告人张某欲将被害人杀死，因被害人呼救未能得逞。", lambda q: q.deaths is None),
        ("被告人张某持刀冲向民警，喊“把你们都砍死”。", lambda q: q.deaths is None),
        ("被告人张某放火，被害人称要是跑得慢的话一家人就被烧死在屋内了。", lambda q: q.deaths is None),
        ("被告人张某放火，将被害人一家三人烧死在屋内。", lambda q: q.deaths.value == 3),
        ("被告人张某指使他人将岛上一只牧羊犬打死。", lambda q: q.deaths is None),
        # 杀害 as the narrated act; not as the name of the act, nor intended, nor attempted
        ("被告人张某索要赎金未果，将被绑架人李某杀害。", lambda q: q.deaths.value == 1),
        ("被告人张某将被害人骗至家中后杀害，并将其项链抢走。", lambda q: q.deaths.value == 1),
        ("公诉机关认为，被告人张某绑架他人，杀害被绑架人，应以绑架罪追究其刑事责任。", lambda q: q.deaths is None),
        ("被告人张某预谋将被害人杀害，因被害人逃脱而未得逞。", lambda q: q.deaths is None),
        ("被告人张某将被害人杀害未遂。", lambda q: q.deaths is None),
        ("被告人张某检举同监室人员王某于2011年持刀将李某杀害的犯罪事实，经查证属实。", lambda q: q.deaths is None),
        # deaths of differently named victims told one by one add up; one victim told twice is one death
        ("被告人张某驾车与电动车相撞，致被害人钟祥林当场死亡，被害人许春华经送医抢救不治死亡。",
         lambda q: q.deaths.value == 2),
        ("被告人张某驾车撞倒被害人王某某，造成被害人王某某当场死亡的交通事故。经鉴定，被害人王某某系因颅脑损伤而死亡。",
         lambda q: q.deaths.value == 1),
        ("被告人张某驾车致被害人王某当场死亡。经鉴定，被害人王某某系因颅脑损伤死亡。", lambda q: q.deaths.value == 1),
        ("被告人张某驾车撞击行人，未造成人员死亡。", lambda q: q.deaths is None),
        # victims listed before one death: each listed name, or the count given after them
        ("被告人张某醉酒驾车，致被害人吴某、郑某当场死亡。", lambda q: q.deaths.value == 2),
        ("被告人张某驾车致被害人刘某及其妻子经抢救无效死亡。", lambda q: q.deaths.value == 2),
        ("被告人张某放火，造成被害人王某、李某、赵某三人死亡。", lambda q: q.deaths.value == 3),
        ("被告人张某驾车撞击人群，致二人当场死亡。", lambda q: q.deaths.value == 2),
        ("被告人张某驾车致被害人刘某当场死亡，被害人李某受伤。", lambda q: q.deaths.value == 1),
        ("被告人张某骗取被害人现金人民币三万五千元，后被告人张某退赔人民币二千元。",
         lambda q: q.amount_yuan.value == 35000),
        ("被告人张某盗窃财物价值共计人民币1.5万元，另被判处罚金人民币二万元。", lambda q: q.amount_yuan.value == 15000),
        # the act after the amount; an appraisal; a loan obtained by fraud
        ("被告人张某乘被害人试衣之机，将其衣服口袋里的150.5元盗走。", lambda q: q.amount_yuan.value == 150.5),
        ("被告人张某将公司账户里的人民币94000元转到被告人张某的支付宝账户。", lambda q: q.amount_yuan.value == 94000),
        ("被告人张某盗得手机一部，经价格认定为人民币1000元。", lambda q: q.amount_yuan.value == 1000),
        ("被告人张某提供虚假证明，在银行办理贷款200000元。", lambda q: q.amount_yuan.value == 200000),
        ("被告人张某在超市购买香烟50元后离开。", lambda q: q.amount_yuan is None),
        # money taken from a card: the act before the amount
        ("被告人张某捡到他人银行卡后，在ATM机上取现15000元。", lambda q: q.amount_yuan.value == 15000),
        ("被告人张某操作将被害人银行卡内的现金取走人民币8000元。", lambda q: q.amount_yuan.value == 8000),
        ("被告人张某从银行取出现金15000元用于赔偿。", lambda q: q.amount_yuan is None),
        # a bribe given; the contents of a snatched bag; public money diverted; a wage promised is none
        ("被告人张某为谋取不正当利益，给予国家工作人员赵某现金40万元。", lambda q: q.amount_yuan.value == 400000),
        ("被告人张某飞车抢夺被害人的挂包，该包内装有约3500元现金等物。", lambda q: q.amount_yuan.value == 3500),
        ("被告人张某将单位账户上的30万元公款挪用于个人炒股。", lambda q: q.amount_yuan.value == 300000),
        ("被告人张某承诺每办理一张银行卡给予100元报酬。", lambda q: q.amount_yuan is None),
        # money the victim was made to pay the defendant; a victim described in brackets before the amount
        ("被告人张某要求被害人朱某在3月6日前付给其5万元。", lambda q: q.amount_yuan.value == 50000),
        ("被害人李某被迫以支付宝转账的方式支付给被告人张某人民币1.5万元。", lambda q: q.amount_yuan.value == 15000),
        ("被告人张某骗取被害人郝某（男，52岁，吉林省人）人民币2201元。", lambda q: q.amount_yuan.value == 2201),
        # what was taken, though its name is a compensation's; the victim's loss; money diverted
        ("被告人张某利用假批复签订协议，骗取动迁补偿款人民币214120.2元。", lambda q: q.amount_yuan.value == 214120.2),
        ("被告人张某对被害人的赔偿款人民币5000元予以退还。", lambda q: q.amount_yuan is None),
        ("民警在被告人张某家中搜查到被盗的3250元现金。", lambda q: q.amount_yuan.value == 3250),
        ("被害人基于恐惧心理给付被告人张某人民币8万元。", lambda q: q.amount_yuan.value == 80000),
        ("被告人张某利用职务之便，将其代收的25万元货款挪作他用。", lambda q: q.amount_yuan.value == 250000),
        ("被告人张某擅自将该人民币641900元转入由其控制的公司账户。", lambda q: q.amount_yuan.value == 641900),
        # 恶意透支: the principal overdrawn, not the card's total spending (法释〔2018〕19号)
        ("截止2015年11月27日，被告人张某累计消费金额1447802元，累计还款金额1342361元，透支该信用卡本金105441元。",
         lambda q: q.amount_yuan.value == 105441),
        # the court naming the statutory bracket: its lower bound, never its upper one
        ("被告人张某销售伪劣烟草，价值在五十万以上不满二百万元。", lambda q: q.amount_yuan.value == 500000),
        ("被告人张某销售金额达五万元以上不满二十万元。", lambda q: q.amount_yuan.value == 50000),
        ("被告人张某销售金额不满五万元。", lambda q: q.amount_yuan is None),
        # a weight the court names as a bound is no weight (杨莉: 85 months for 不满十克, sentenced to 6)
        ("被告人张某向他人贩卖毒品甲基苯丙胺不满十克。", lambda q: q.drug_grams == {}),
        ("被告人张某贩卖甲基苯丙胺10克以下。", lambda q: q.drug_grams == {}),
        ("被告人张某贩卖甲基苯丙胺十克以上。", lambda q: q.drug_grams["甲基苯丙胺"].value == 10),
        # a list of weights of one drug; the drug named in the clause before the weight; every drug the
        # catalogue converts (罂粟壳), not only the common ones
        ("民警查获毒品甲基苯丙胺二包（分别净重1.42克、329.10克）。",
         lambda q: q.drug_grams["甲基苯丙胺"].value == 329.1),
        ("从查获的毒品中检出甲基苯丙胺，净重36.7克。", lambda q: q.drug_grams["甲基苯丙胺"].value == 36.7),
        ("被告人张某贩卖甲基苯丙胺6次，共计5克。", lambda q: q.drug_grams["甲基苯丙胺"].value == 5),
        ("当场从其驾驶的车内查获罂粟壳680.08千克。", lambda q: q.drug_grams["罂粟壳"].value == 680080),
        ("被告人张某将2包甲基苯丙胺（冰毒，共计1.99克）卖给他人。", lambda q: q.drug_grams["甲基苯丙胺"].value == 1.99),
        ("被告人张某盗窃手机，后被告人张某又在其住处吸食毒品，另称重1.5克。", lambda q: q.drug_grams == {}),
        # 多次 is at least three times, for the acts where the count selects a tier
        ("被告人张某多次向他人贩卖毒品甲基苯丙胺共计1.2克。",
         lambda q: q.occurrences.value == 3 and q.drug_grams["甲基苯丙胺"].value == 1.2),
        ("被告人张某多次指使他人贩卖毒品。", lambda q: q.occurrences.value == 3),
        ("被告人张某多次秘密窃取他人财物。", lambda q: q.occurrences is None),
        ("被告人张某共贩卖冰毒3次1.2克。", lambda q: q.occurrences.value == 3),
        # counts in a clause about the record are not this crime's
        ("被告人张某曾因盗窃2次被行政拘留。", lambda q: q.occurrences is None),
        ("被告人张某曾多次贩卖毒品被行政处罚。", lambda q: q.occurrences is None),
    ],
)
def test_quantities(facts: str, check) -> None:
    (d,) = extract_defendant_facts(_facts_case(facts, "张某")).defendants
    assert check(d.quantities)


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("公诉机关认为被告人具有坦白情节，建议对被告人判处有期徒刑六个月至一年，并处罚金。被告人无异议。",
         ["坦白情节", "被告人无异议。"], ["六个月", "建议"]),
        ("公诉机关建议判处被告人拘役三至四个月。下一句。", ["下一句。"], ["拘役", "公诉机关"]),
        ("公诉机关提出有期徒刑一年至二年的量刑建议，本院予以采纳。被告人对量刑建议无异议且签字具结。",
         ["对量刑建议无异议且签字具结"], ["一年至二年"]),
        ("于2018年6月25日向本院提起公诉，并建议本院适用速裁程序审理。", ["建议本院适用速裁程序"], []),
        ("建议对其在××至一年的幅度内处刑，并处罚金。", [], ["一年"]),
    ],
)
def test_strip_recommendation(text: str, kept: list[str], gone: list[str]) -> None:
    out = strip_recommendation(text)
    assert all(k in out for k in kept), out
    assert not any(g in out for g in gone), out


def test_sentence_round_trip_through_parse_sentence_is_shared() -> None:
    # The judgment parser reads clauses with the one sentence parser (sentencing.sentence).
    s = Sentence(kind=SentenceKind.FIXED_TERM, months=30, probation_months=36, fine_yuan=8500)
    (outcome,) = parse_judgment_section(f"被告人王某犯诈骗罪，判处{format_sentence(s)}。")
    assert outcome.sentence == parse_sentence(format_sentence(s)) == s


_FRAGMENTS = [
    "被告人", "张某", "李某", "，", "。", "；", "犯", "盗窃罪", "判处", "有期徒刑", "一年", "六个月", "缓刑", "拘役",
    "决定执行", "判决如下：", "本院认为", "人民法院", "（2018）苏0106刑初1号", "建议", "量刑建议", "自首", "不构成",
    "从犯", "1.5万元", "共计", "克", "海洛因", "2001年3月5日出生", "撤销", "一、", "与前罪", "罚金", "死刑", "（", "）",
]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=60))
def test_any_arrangement_of_judgment_words_parses_without_error(words: list[str]) -> None:
    case = parse_judgment_document("".join(words), case_id="fuzz")
    assert case.id == "fuzz"
    for d in case.defendants:
        for c in d.circumstances:
            assert c.evidence is None or c.evidence.text


@pytest.mark.parametrize(
    ("text", "names", "pregnant"),
    [
        ("被告人范某某系怀孕妇女。", ["范某某"], {"范某某"}),
        ("经审理查明，2015年3月30日晚，被告人潘某在怀孕期间因家人不关心她，为泄愤放火。", ["潘某"], {"潘某"}),
        ("被告人甲某、乙某共同贩卖毒品。被告人乙某在羁押期间经检查已怀孕。", ["甲某", "乙某"], {"乙某"}),
        # a victim's, a wife's, the statute's words, a denial: none is the defendant's
        ("被告人陈某致被害人吴某怀孕并引产。", ["陈某"], set()),
        ("被告人陈某与被害人多次发生性关系，被害人发现已怀孕。", ["陈某"], set()),
        ("被告人张某称其妻子已怀孕，急需用钱。", ["张某"], set()),
        ("对其中不满十八周岁的人、怀孕的妇女和已满七十五周岁的人，应当宣告缓刑。", ["张某"], set()),
        ("经检查，被告人李某未怀孕。", ["李某"], set()),
    ],
)
def test_a_pregnancy_of_the_defendant_and_no_one_else(text: str, names: list[str], pregnant: set[str]) -> None:
    case = extract_defendant_facts(Case(id="t", facts=text, defendants=[Defendant(name=n) for n in names]))
    assert {d.name for d in case.defendants if d.pregnant} == pregnant
    assert all(d.pregnant is None for d in case.defendants if d.name not in pregnant)


def _tiers(facts: str, charges: list[str], reasoning: str = "") -> dict[str, str | None]:
    case = extract_defendant_facts(Case(id="t", facts=facts, reasoning=reasoning, defendants=[
        Defendant(name="张某", charges=[Charge(name=c) for c in charges])]))
    return {c.name: c.tier for c in case.defendants[0].charges}


@pytest.mark.parametrize(
    ("facts", "charges", "want"),
    [
        ("公诉机关认为，被告人张某秘密窃取他人财物，数额巨大，其行为已构成盗窃罪。", ["盗窃"],
         {"盗窃": "数额巨大或者有其他严重情节"}),
        ("被告人张某骗取他人财物，数额特别巨大，其行为已构成诈骗罪。", ["诈骗"],
         {"诈骗": "数额特别巨大或者有其他特别严重情节"}),
        # denied, approached, asked, defined, or the law's words: none
        ("被告人张某盗窃他人财物价值二万元，尚未达到数额巨大。", ["盗窃"], {"盗窃": None}),
        ("被告人张某盗窃他人财物价值五万元，接近数额巨大。", ["盗窃"], {"盗窃": None}),
        ("本案争议焦点为被告人张某的行为是否属于情节严重。", ["寻衅滋事"], {"寻衅滋事": None}),
        ("本省盗窃公私财物数额巨大标准为六万元。", ["盗窃"], {"盗窃": None}),
        ("依照刑法规定，盗窃公私财物，数额巨大的，处三年以上十年以下有期徒刑。", ["盗窃"], {"盗窃": None}),
        ("本罪在客观方面必须表现为行为人利用职务便利，将本单位财物非法占为己有，数额较大的行为。", ["职务侵占"],
         {"职务侵占": None}),
        ("根据司法解释，盗窃公私财物价值三万元至十万元以上的，应当认定为数额巨大。", ["盗窃"], {"盗窃": None}),
        ("辩护人提出被告人张某犯罪情节较轻，本院不予采纳。", ["故意杀人"], {"故意杀人": None}),
        # 情节严重 as a label beside an amount writes it; words the law's tiers imply
        ("被告人张某非法吸收公众存款，情节严重，其行为已构成非法吸收公众存款罪。", ["非法吸收公众存款"],
         {"非法吸收公众存款": "数额巨大或者有其他严重情节"}),
        ("被告人张某使用诈骗方法非法集资，数额特别巨大，其行为已构成集资诈骗罪。", ["集资诈骗"],
         {"集资诈骗": "数额巨大或者有其他严重情节"}),
        ("被告人张某挪用本单位资金归个人使用，数额较大，超过三个月未还。", ["挪用资金"], {"挪用资金": "基本犯"}),
        # a phrase no tier of the charge holds; beside another charge, the only charge with such a tier
        ("被告人张某随意殴打他人，数额较大。", ["寻衅滋事"], {"寻衅滋事": None}),
        ("公诉机关认为，被告人张某窃取公私财物，数额较大，并向他人传授犯罪方法。", ["盗窃", "传授犯罪方法"],
         {"盗窃": "数额较大", "传授犯罪方法": None}),
        # 情节… words beside another charge may be that charge's element, told in its words: unnamed, none
        ("被告人张某随意殴打他人，情节恶劣，任意损毁他人财物，情节严重。", ["非法采矿", "寻衅滋事"],
         {"非法采矿": None, "寻衅滋事": None}),
        # two charges with such a tier: the one its sentence names before it
        ("被告人张某犯诈骗罪，数额巨大；另犯盗窃罪，数额较大。", ["盗窃", "诈骗"],
         {"盗窃": "数额较大", "诈骗": "数额巨大或者有其他严重情节"}),
        ("被告人张某窃取、骗取他人财物，数额较大。", ["盗窃", "诈骗"], {"盗窃": None, "诈骗": None}),
        # the same words twice, each for the charge named before it
        ("被告人张某犯诈骗罪，数额较大，另犯盗窃罪，数额较大。", ["盗窃", "诈骗"],
         {"盗窃": "数额较大", "诈骗": "数额较大"}),
    ],
)
def test_tiers_the_texts_say_the_conduct_reaches(facts: str, charges: list[str], want: dict[str, str | None]) -> None:
    assert _tiers(facts, charges) == want


def test_the_courts_stated_tier_outranks_the_indictments() -> None:
    facts = "公诉机关认为，被告人张某秘密窃取他人财物，数额巨大，其行为已构成盗窃罪。"
    reasoning = ("本院认为，被告人张某盗窃他人财物，数额较大，其行为已构成盗窃罪。"
                 "公诉机关指控数额巨大有误，本院予以纠正。")
    assert _tiers(facts, ["盗窃"], reasoning) == {"盗窃": "数额较大"}
    case = extract_defendant_facts(Case(id="t", facts=facts, defendants=[
        Defendant(name="张某", charges=[Charge(name="盗窃", tier="数额较大")])]))
    assert case.defendants[0].charges[0].tier == "数额较大"  # a tier already set is kept
    assert case.defendants[0].charges[0].tier_evidence is None


def test_a_stated_tier_goes_to_the_defendants_its_clause_names() -> None:
    facts = "公诉机关认为，被告人张某盗窃他人财物，数额巨大；被告人李某盗窃他人财物，数额较大，其行为均已构成盗窃罪。"
    case = extract_defendant_facts(Case(id="t", facts=facts, defendants=[
        Defendant(name="张某", charges=[Charge(name="盗窃")]), Defendant(name="李某", charges=[Charge(name="盗窃")])]))
    assert [d.charges[0].tier for d in case.defendants] == ["数额巨大或者有其他严重情节", "数额较大"]
