"""Judged cases for the retrieval tests, written out here so the tests do not depend on the demo generator.

Facts follow the wording of real judgments; sentences follow the charges' statutory tiers, so
that a similar case found by text also has a similar sentence.
"""

from __future__ import annotations

import datetime as dt
import random

from sentencing.case import (
    Case,
    Charge,
    Circumstance,
    CircumstanceCode,
    Court,
    Defendant,
    Injury,
    InjuryGrade,
    Measure,
    Quantities,
    Role,
)
from sentencing.sentence import Sentence, SentenceKind

PROVINCES = (("JS", "江苏省", "南京市"), ("ZJ", "浙江省", "杭州市"), ("GD", "广东省", "广州市"),
             ("SC", "四川省", "成都市"), ("HB", "湖北省", "武汉市"), ("SD", "山东省", "济南市"))
DISTRICTS = ("鼓楼区", "西湖区", "天河区")
SURNAMES = "张王李赵刘陈杨黄周吴"


def _facts(charge: str, name: str, amount: int, rng: random.Random) -> str:
    place = rng.choice(["小区", "商场", "菜市场", "公交车上", "出租屋"])
    if charge == "盗窃":
        item = rng.choice(["手机", "电动自行车", "现金", "金项链", "笔记本电脑"])
        return f"经审理查明，被告人{name}于某日在{place}趁被害人不备，窃取其{item}，经鉴定价值人民币{amount}元。"
    if charge == "诈骗":
        how = rng.choice(["冒充客服", "虚构投资项目", "谎称可办理贷款", "冒充熟人借钱"])
        return f"经审理查明，被告人{name}通过网络{how}，骗取被害人钱款共计人民币{amount}元，后挥霍一空。"
    if charge == "危险驾驶":
        return (
            f"经审理查明，被告人{name}酒后驾驶小型轿车行驶至{place}附近时被民警查获，"
            f"经检验血液酒精含量为{amount}mg/100ml。"
        )
    return f"经审理查明，被告人{name}在{place}因琐事与被害人发生争执，持木棍殴打被害人头部，致其轻伤二级。"


def _sentence(charge: str, amount: int, codes: set[CircumstanceCode], rng: random.Random) -> Sentence:
    if charge == "危险驾驶":
        months = min(6, max(1, amount // 60))
        return Sentence(kind=SentenceKind.DETENTION, months=months, fine_yuan=months * 1000)
    if charge == "故意伤害":
        months = rng.choice([8, 10, 12, 14])
    else:
        months = 6 + int(amount / 4000) if amount < 30_000 else 36 + int(amount / 20_000)
    if CircumstanceCode.SURRENDER in codes:
        months = int(months * 0.75)
    if CircumstanceCode.RECIDIVIST in codes:
        months = int(months * 1.3) + 3
    months = max(6, min(months, 120))
    if months <= 36 and CircumstanceCode.FORGIVENESS in codes:
        return Sentence(kind=SentenceKind.FIXED_TERM, months=months, probation_months=max(12, months + 6))
    return Sentence(kind=SentenceKind.FIXED_TERM, months=months, fine_yuan=2000)


def make_cases(n: int, seed: int = 7) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    optional = [CircumstanceCode.SURRENDER, CircumstanceCode.CONFESSION, CircumstanceCode.PLEA_AGREEMENT,
                CircumstanceCode.RECIDIVIST, CircumstanceCode.FORGIVENESS, CircumstanceCode.COMPENSATION]
    for i in range(n):
        charge = rng.choice(["盗窃", "盗窃", "诈骗", "危险驾驶", "故意伤害"])
        code, prov_name, city = rng.choice(PROVINCES)
        district = rng.choice(DISTRICTS)
        name = rng.choice(SURNAMES) + rng.choice("一二三四五六七八九")
        if charge == "危险驾驶":
            amount = rng.randint(85, 320)
        elif charge == "故意伤害":
            amount = 0
        else:
            amount = int(10 ** rng.uniform(3.3, 5.3))
        codes = {c for c in optional if rng.random() < 0.25}
        quantities = Quantities()
        if charge in ("盗窃", "诈骗"):
            quantities = Quantities(amount_yuan=Measure(value=amount))
        elif charge == "危险驾驶":
            quantities = Quantities(blood_alcohol_mg_per_100ml=Measure(value=amount))
        else:
            quantities = Quantities(injuries=[Injury(grade=InjuryGrade.LIGHT_2)])
        defendant = Defendant(
            name=name,
            charges=[Charge(name=charge)],
            role=Role.SOLE,
            circumstances=[Circumstance(code=c) for c in sorted(codes)],
            quantities=quantities,
            sentence=_sentence(charge, amount, codes, rng),
        )
        court = f"{prov_name}{city}{district}人民法院"
        cases.append(
            Case(
                id=f"t{seed}-{i:05d}",
                source="synthetic",
                synthetic=True,
                court=Court(name=court, province=code),
                province=code,
                date=dt.date(2019, 1, 1) + dt.timedelta(days=rng.randint(0, 1500)),
                facts=_facts(charge, name, amount, rng),
                defendants=[defendant],
            )
        )
    return cases
