"""Quantities that select a statutory tier: amount, drug weight, injuries, deaths, occurrences, alcohol.

Read from facts and reasoning, each with the sentence it came from. The crime amount prefers a
stated total (``共计``, ``数额``), then amounts next to a crime verb (``骗取``, ``窃得``, ``价值``, ``取现``,
``被盗的`` before it, ``盗走``, ``挪作他用`` after it); amounts of fines, wages and compensation are
not crime amounts and are skipped, unless they are what was taken (``骗取动迁补偿款``). Drug
weights are kept per drug, the largest stated (a total is never below its parts); a weight the
court names as a bound (``不满十克``, ``十克以下``) is no weight. Occurrences are a count of 次 next
to a crime verb (``盗窃3次``, ``共贩卖冰毒3次``), or ``多次`` before an act whose count selects a
tier (read as 3, the least it means); counts in a clause about the defendant's record (``曾因…被
行政拘留``) are not this crime's. Deaths are ``致/造成(N人)…死亡`` or a killing verb's result told of
someone (``将李某、王某二人刺死``, ``殴打致死``); a death the text only weighs, intends, threatens,
supposes or quotes is none (``足以致人死亡``, ``欲将其杀死``, ``喊“把你们都砍死”``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sentencing.case import Injury, InjuryGrade, Measure, Quantities, trusted
from sentencing.charges import default_catalogue
from sentencing.numerals import NUMBER_PATTERN, NumeralError, parse_number
from sentencing.parsing.circumstances import Span, span_evidence
from sentencing.parsing.mentions import Attributor, in_quotes, with_first_char_filter

_N = NUMBER_PATTERN
# Amounts are found from their 元 backwards: the unit is rare, numerals are everywhere.
_YUAN = re.compile(r"元")
# ``十余万元`` reads as its lower bound, 100000.
_NUMBER_BEFORE = with_first_char_filter(rf"(?P<num>{_N})(?:余|多)?(?P<wan>万)?\s*$")
_TOTAL = with_first_char_filter(
    r"(?:共计|合计|累计|总计|总额|总价值|价值共计|数额|金额|共|计|达|总共)[^，,。；;]{0,8}$"
)
_CRIME_VERB = with_first_char_filter(
    r"(?:价值|骗取|骗得|收取|诈得|获取|非法占有|索要|透支|尚欠|本金|借款|窃得|窃取|盗走|盗得|盗窃|诈骗|收受|索取|挪用|侵占|吸收|违法所得|非法获利|获利|赌资|抽头|"
    r"涉案|销售金额|经营额|敲诈|勒索|抢劫|抢走|劫得|抢得|贪污|受贿|行贿|套取|虚开|票面|集资|贷款|价格认定|估价|"
    r"认定为|鉴定为|被盗|被骗|被抢|给付|取走|取现|提现|盗刷|转走|给予|贿赂|装有|内有|付款|付给其|付给被告人|"
    r"支付给被告人|转账给被告人)[^，,。；;]{0,18}$"
)
# The act after the amount: ``将…口袋里的150.5元盗走``, ``将公司账户里的94000元转到被告人…``.
_CRIME_VERB_AFTER = re.compile(
    r"[^，,。；;]{0,6}?(?:盗走|窃走|偷走|骗走|拿走|取走|抢走|劫走|转走|据为己有|占为己有|转到被告人|转入被告人|转至被告人|"
    r"挪作他用|挪作私用|挪为己用|挪用|转入由其控制|转入其控制|转入其个人|转至其个人|用于个人)"
)
# A bracket, ``五十万以上不满二百万元`` (the court naming the statutory tier): its upper bound is no
# amount; its lower bound, a number with or without 万/元, is the least the amount can be.
_UPPER_BOUND = re.compile(r"(?:不满|不足|未满|低于)\s*$")
_LOWER_BOUND_BEFORE = with_first_char_filter(rf"(?P<num>{_N})(?P<wan>万)?元?(?:以上|及以上)\s*$")
_NOT_CRIME_AMOUNT = with_first_char_filter(
    r"(?:罚金|工资|赔偿|退赔|退赃|退缴|退还|赔付|补偿|谅解|保证金|取保|奖励|报酬|月薪|价格为每|单价|每克|每包)"
    r"[^，,。；;]{0,10}$"
)
# 恶意透支's amount is the principal overdrawn and not repaid (法释〔2018〕19号 第九条), not a card's total
# spending (``累计消费金额1447802元，累计还款金额1342361元，透支该信用卡本金105441元``).
_OVERDRAFT_PRINCIPAL = re.compile(r"透支[^，,。；;]{0,8}本金[^，,。；;\d]{0,6}$")
_BRACKETED = re.compile(r"[（(][^（）()]{0,40}[）)]")
# A payment for work named after the amount (``给予100元报酬``) is no crime amount either.
_PAY_AFTER = re.compile(r"(?:的)?(?:报酬|工资|劳务费|酬劳|辛苦费|工钱)")
# ...unless it is what was taken: ``骗取动迁补偿款人民币214120.2元``, ``骗取保险赔偿金``, ``冒领工资``.
_TAKEN_AS = with_first_char_filter(
    r"(?:骗取|骗得|诈骗|套取|冒领|侵占|挪用|贪污|窃取|盗窃|骗领)[^，,。；;]{0,12}"
    r"(?:罚金|工资|赔偿|补偿|奖励|报酬|保证金)[^，,。；;]{0,10}$"
)

# Drug names: every drug the catalogue converts (法释〔2016〕8号), under its own name, and the street or
# chemical names the judgments also use, under the catalogue's.
_DRUG_SYNONYMS = {
    "冰毒": "甲基苯丙胺",
    "麻古": "甲基苯丙胺片剂",
    "K粉": "氯胺酮",
    "摇头丸": "MDMA",
    "二亚甲基双氧安非他明": "MDMA",
}
_DRUGS = {**{name: name for name in default_catalogue().drug_equivalents if name not in _DRUG_SYNONYMS},
          **_DRUG_SYNONYMS}
_DRUG_ALT = "|".join(sorted(_DRUGS, key=len, reverse=True))
# Drug weights are found from their unit: ``甲基苯丙胺…5.6克`` or ``5.6克…检出甲基苯丙胺``.
_WEIGHT_UNIT = re.compile(r"(?P<unit>千克|公斤|克|kg|KG|g|G)(?![a-zA-Z])")
_DRUG = re.compile(_DRUG_ALT)
# A weight that lists on from the one before (``1.42克、329.10克``), or a clause that is only a weight after a
# clause naming the drug (``检出甲基苯丙胺，净重36.7克``).
_LIST_SEPARATOR = re.compile(r"\s*(?:、|和|及|以及)\s*")
_WEIGHT_CLAUSE = re.compile(r"\s*(?:净重|重量为|重量|重|共计|合计|计|约)?\s*")
_DRUG_PREVIOUS_CLAUSE = re.compile(rf"(?P<drug>{_DRUG_ALT})[^，,。；;]{{0,6}}[，,]$")
# A weight with its drug right after it (``贩卖1.94克甲基苯丙胺``, ``约0.5克的毒品海洛因``).
_DRUG_RIGHT_AFTER = re.compile(rf"(?:的)?(?:毒品)?(?P<drug>{_DRUG_ALT})")
# A weight written right after its drug (``甲基苯丙胺净重1.2克``, ``甲基苯丙胺（净重0.3克）``) belongs to it,
# whatever follows the weight.
_OWN_WEIGHT = re.compile(r"\s*[（(]?\s*(?:净重为|净重|重量为|重量|重|共计|合计|计|约|为|[：:])*\s*")
# A weight of a substance not yet named (``净重4.52克的白色晶体``, ``共计净重1.91克``) that the text later
# finds one drug in (``经鉴定，上述白色晶体中均检出甲基苯丙胺成分``): the weights are that drug's.
_SUBSTANCES = r"(?:晶体|粉末|颗粒|疑似物|可疑物|疑似毒品|药片|固体|块状物|膏状物)"
_UNNAMED_SUBSTANCE = re.compile(rf"[^。；;，,]{{0,12}}?{_SUBSTANCES}")
_SUBSTANCE_BEFORE = re.compile(rf"{_SUBSTANCES}[^。；;，,]{{0,10}}[（(]?[^。；;，,]{{0,8}}$")
_DETECTED = re.compile(rf"(?:检出|检测出|检验出|均检出|含有|检出有)(?P<drug>{_DRUG_ALT})")
_DRUG_AFTER = re.compile(rf"[^。；;]{{0,24}}?(?:检出|含有|检测出|均检出|系|为)[^。；;，,]{{0,6}}?(?P<drug>{_DRUG_ALT})")

_INJURY = with_first_char_filter(r"(?P<grade>轻微伤|轻伤一级|轻伤二级|轻伤|重伤一级|重伤二级|重伤)")
_PEOPLE_BEFORE = with_first_char_filter(r"(?P<n>[0-9一二两三四五六七八九十]+)人[^。；;，,人]{0,6}$")
_GRADES = {
    "轻微伤": InjuryGrade.MINOR, "轻伤一级": InjuryGrade.LIGHT_1, "轻伤二级": InjuryGrade.LIGHT_2,
    "轻伤": InjuryGrade.LIGHT_2, "重伤一级": InjuryGrade.SERIOUS_1, "重伤二级": InjuryGrade.SERIOUS_2,
    "重伤": InjuryGrade.SERIOUS_2,
}
# A death is ``致/造成…死亡`` or a killing verb's result (``刺死``, ``殴打致死``, ``将李某杀害``); ``死刑``,
# ``死缓`` and ``死者`` are no death of this crime, nor ``杀害`` as a name of the act (``杀害被绑架人的``).
_DEATH = re.compile(
    r"死亡|(?<=[刺砍杀打捅掐勒扼闷毒烧炸撞溺踢砸])死(?![刑缓者去])|致死(?![量率亡])|杀害(?!未遂|未果|未成|未得逞)")
_DEATH_CAUSE = with_first_char_filter(
    rf"(?:致|造成)(?:(?P<n>{_N})(?:人|名))?[^。；;，,]{{0,12}}$|(?:抢救无效|当场|经抢救无效|不治)$"
)
# ``将李某、王某二人刺死``: the count of the killed stands before the verb, in its clause.
_KILLED_COUNT = with_first_char_filter(rf"(?P<n>{_N})(?:人|名)[^。；;，,]{{0,3}}$")
# A killing verb is read only as the narrated act on someone (``将被害人刺死``, ``骆进才被烧死``), not in
# quoted speech (``喊“砍死你们”``), a supposition (``要是跑得慢的话…就被烧死``), an animal's death
# (``将岛上一只牧羊犬打死``) or a pretext (``以撞死一条藏獒为由``).
_KILLED_OBJECT = re.compile(r"将|把|被")
_NOT_A_KILLING = re.compile(r"要是|如果|假如|若|否则|的话|犬|狗|猫|鸡|鸭|猪|牛|羊|藏獒|为由|借口|条|只|匹")
# A death the clause only weighs, intends, threatens or denies is none: ``足以致人死亡``, ``对致人死亡这一后果
# 持放任态度``, ``欲将其杀死``, ``扬言要打死``, ``未造成死亡``, ``险些致人死亡``.
_NO_DEATH = re.compile(
    r"足以|可能|(?:未|没有|并未|不会)(?:能|得逞)?(?:造成|致|导致|将)|并非|意图|企图|欲|想要|想将|扬言|威胁|要将|要把|"
    r"要杀|要打|放任|希望|追求|准备|预谋|险些|差点|几乎|避免|防止|对致"
)
# The victim a death is told of, named in its clause before it (``致被害人钟某当场死亡``, ``被害人许某经送医
# 抢救不治死亡``): deaths told of different victims close together are added up.
_VICTIM_NAME = r"[^\s，,。；;、：:（()系的是在因经被于当送受抢不头颅死致已等和与及驾骑乘]{1,4}"
_VICTIM = re.compile(rf"被害人(?P<v>{_VICTIM_NAME})")
# Victims listed together before one death (``致被害人张某、田某当场死亡``): each listed name is a death.
_HOW_DIED = r"(?:当场|经抢救无效|经送医抢救无效|抢救无效|经医院抢救无效|经抢救|均|都|先后|相继)?"
_MORE_VICTIMS = re.compile(rf"(?:[、和与及](?:被害人)?{_VICTIM_NAME})+(?=(?:{_N}(?:人|名))?{_HOW_DIED}$)")
# ``造成被害人王某、李某、赵某三人死亡``: a list too long for :data:`_DEATH_CAUSE`'s window.
_LISTED_DEATHS = re.compile(
    rf"(?:致|造成)(?:被害人)?{_VICTIM_NAME}(?:[、和与及](?:被害人)?{_VICTIM_NAME})+"
    rf"(?:(?P<n>{_N})(?:人|名))?{_HOW_DIED}$"
)
# ``致二人当场死亡`` told after the victims: the count just before the death.
_DEAD_COUNT = with_first_char_filter(rf"(?P<n>{_N})(?:人|名){_HOW_DIED}$")
_LISTED = re.compile(r"[、和与及]")
_VICTIMS_APART = 120
"""Deaths of differently named victims this close (characters) are one account of several deaths."""
# A death told in a sentence about another's crime that the defendant reported (立功: ``检举同监室羁押嫌疑人
# 邓某…持刀将王某杀害``) is not the defendant's.
_REPORTED_CRIME = re.compile(r"检举|揭发|举报|线索|立功")
_ACT_WINDOW = 40
_CLAUSE_END = re.compile(r"[，,。；;\n]")
_TIMES = re.compile(r"次")
_OCCURRENCES = with_first_char_filter(rf"(?<!第)(?P<pre>先后|共计|共|累计|分别|合计|总计|分)?(?P<num>{_N})$")
_OCC_VERBS = r"(?:盗窃|诈骗|贩卖|容留|作案|实施|抢劫|抢夺|窃取|扒窃|入户|销售|出售|运输|行贿|收受|组织|介绍)"
_OCC_VERB = re.compile(rf"[^。；;，,]{{0,4}}{_OCC_VERBS}")
# The act before the count, ``共贩卖冰毒3次``: the same verbs, a few words of object between.
_OCC_VERB_BEFORE = re.compile(rf"{_OCC_VERBS}[^。；;，,]{{0,8}}$")
# ``多次贩卖``: 多次 is three times or more in criminal law (法释〔2016〕8号 第四条 多次贩卖毒品 is
# 情节严重; 刑法第263条 多次抢劫), so it counts as 3, the least it can mean. Only for acts where the
# count selects a tier: a defendant's count applies to all their charges, and ``多次秘密窃取`` must
# not make a co-charged rape 强奸多人.
_MANY_TIMES = re.compile(r"多次[^。；;，,]{0,6}?(?:贩卖|走私|运输|制造|抢劫|抢夺|敲诈|勒索|容留)")
_MANY_TIMES_VALUE = 3
# A count in a clause about earlier punishment (``曾因盗窃2次被行政拘留``) is a record, not this crime.
_RECORD = re.compile(r"曾|前科|被[^。；;，,]{0,8}(?:处罚|拘留|判处|劳动教养|劳教|强制隔离)")
# A weight the court names as a bound (``甲基苯丙胺不满十克``, ``十克以下``) is no weight.
_BELOW_AFTER = re.compile(r"\s*(?:以下|以内)")
_ALCOHOL = with_first_char_filter(
    rf"(?:酒精|乙醇)(?:含量|浓度)?[^。；;，,\d]{{0,6}}?(?P<num>{_N})\s*(?P<unit>mg|毫克|MG)\s*[/／每]\s*(?P<per>100\s*(?:ml|mL|ML|毫升)|毫升|ml|mL)"
)


@dataclass(frozen=True, slots=True)
class QuantityFinding:
    kind: str
    """``amount``, ``drug:<name>``, ``injury:<grade>``, ``deaths``, ``occurrences``, ``alcohol``."""
    value: float
    score: int
    names: tuple[str, ...]
    evidence: Span
    before: str = ""
    """An amount's sentence before it (at most :data:`_ACT_WINDOW` characters), where the act it was got
    by is told (``收受他人财物``): :func:`charge_amounts` reads it."""
    after: str = ""
    """An amount's clause after it (``…的电机一台被盗走``)."""


def _number(text: str) -> float | None:
    try:
        return parse_number(text)
    except (NumeralError, ValueError):
        return None


def _clause_bounds(text: str, at: int) -> tuple[int, int]:
    """``(start, end)`` of the clause holding ``at``: from after the last mark (。；，) before it to the next."""
    start = max(text.rfind(ch, 0, at) for ch in "。；;，,") + 1
    ends = [e for e in (text.find(ch, at) for ch in "。；;，,") if e >= 0]
    return start, min(ends, default=len(text))


def _in_record(text: str, at: int) -> bool:
    """Whether ``at`` lies in a clause about the defendant's record (its text up to the next mark)."""
    return _RECORD.search(text, *_clause_bounds(text, at)) is not None


def find_quantities(text: str, source: str, attributor: Attributor) -> list[QuantityFinding]:
    out: list[QuantityFinding] = []

    def add(kind: str, value: float, score: int, start: int, end: int, before: str = "", after: str = "") -> None:
        out.append(QuantityFinding(kind, value, score, attributor.who(start), span_evidence(text, source, start, end),
                                   before, after))

    for y in _YUAN.finditer(text):
        m = _NUMBER_BEFORE.search(text, max(0, y.start() - 20), y.start())
        if m is None:
            continue
        bound = _UPPER_BOUND.search(text, max(0, m.start() - 4), m.start())
        if bound is not None:
            m = _LOWER_BOUND_BEFORE.search(text, max(0, bound.start() - 20), bound.start())
            if m is None:
                continue
        value = _number(m.group("num"))
        if value is None or value <= 0:
            continue
        if m.group("wan"):
            value *= 10_000
        head = text[max(0, m.start() - 20):m.start()]
        if "）" in head or ")" in head:  # a victim described in brackets (``骗取郝某（男，52岁…）人民币2201元``)
            head = _BRACKETED.sub("", text[max(0, m.start() - 60):m.start()])[-20:]
        if (_NOT_CRIME_AMOUNT.search(head) and not _TAKEN_AS.search(head)) or _PAY_AFTER.match(text, y.end()):
            continue
        if _OVERDRAFT_PRINCIPAL.search(head):
            score = 4  # the law's own measure of 恶意透支, over any total of spending or repayments
        elif _TOTAL.search(head):
            score = 3 if source == "reasoning" else 2
        elif _CRIME_VERB.search(head) or _CRIME_VERB_AFTER.match(text, y.end()):
            score = 1
        else:
            continue
        window = max(0, m.start() - _ACT_WINDOW)  # the sentence's start is looked for in the window alone
        sentence = max(window, max(text.rfind(ch, window, m.start()) for ch in "。；;\n") + 1)
        clause_end = _CLAUSE_END.search(text, y.end(), y.end() + _ACT_WINDOW)
        add("amount", value, score, m.start(), y.end(), text[sentence:m.start()],
            text[y.end():clause_end.start() if clause_end else y.end() + _ACT_WINDOW])
    # Every weight unit holds 克, 斤, g or G: without one the (costly) scan for drug names is moot.
    if ("克" in text or "斤" in text or "g" in text or "G" in text) and _DRUG.search(text):
        previous_unit = 0
        listed: tuple[str, int] | None = None  # the drug of the weight just read, and where that weight ended
        taken = 0  # where the last drug named right after its weight ended: no weight after it is its
        unnamed: list[tuple[float, int, int]] = []  # weights of a substance the text names later (value, span)
        for u in _WEIGHT_UNIT.finditer(text):
            floor, previous_unit = previous_unit, u.end()
            follows, listed = listed, None
            m = _NUMBER_BEFORE.search(text, max(0, u.start() - 16), u.start())
            if m is None or m.group("wan"):
                continue
            if _UPPER_BOUND.search(text, max(0, m.start() - 4), m.start()) or _BELOW_AFTER.match(text, u.end()):
                continue
            value = _number(m.group("num"))
            if value is None or value <= 0:
                continue
            if u.group("unit") in ("千克", "公斤", "kg", "KG"):
                value *= 1000
            window_start = max(floor, m.start() - 24)
            clause = max(text.rfind(ch, window_start, m.start()) for ch in "。；;，,") + 1
            before = list(_DRUG.finditer(text, max(window_start, clause, taken), m.start()))
            right_after = _DRUG_RIGHT_AFTER.match(text, u.end())
            if before and (right_after is None or _OWN_WEIGHT.fullmatch(text, before[-1].end(), m.start())):
                drug, start = before[-1].group(0), before[-1].start()
            elif right_after is not None:  # ``贩卖1.94克甲基苯丙胺``
                drug, start, taken = right_after.group("drug"), m.start(), right_after.end()
                add(f"drug:{_DRUGS[drug]}", value, 1, start, right_after.end())
                listed = (drug, u.end())
                continue
            elif follows is not None and _LIST_SEPARATOR.fullmatch(text, follows[1], m.start()):
                drug, start = follows[0], m.start()  # ``分别净重1.42克、329.10克``: the list's drug
            elif (named := _DRUG_PREVIOUS_CLAUSE.search(text, max(0, clause - 16), clause)) and \
                    _WEIGHT_CLAUSE.fullmatch(text, clause, m.start()):
                drug, start = named.group("drug"), named.start()  # ``检出甲基苯丙胺，净重36.7克``
            elif after := _DRUG_AFTER.match(text, u.end()):
                drug, start = after.group("drug"), m.start()
                add(f"drug:{_DRUGS[drug]}", value, 1, start, after.end())
                listed = (drug, u.end())
                continue
            else:
                if _UNNAMED_SUBSTANCE.match(text, u.end()) or _SUBSTANCE_BEFORE.search(text, clause, m.start()):
                    unnamed.append((value, m.start(), u.end()))
                continue
            add(f"drug:{_DRUGS[drug]}", value, 1, start, u.end())
            listed = (drug, u.end())
        if unnamed:
            found = {_DRUGS[d.group("drug")] for d in _DETECTED.finditer(text, unnamed[0][2])}
            if len(found) == 1:
                (drug,) = found
                for value, start, end in unnamed:
                    add(f"drug:{drug}", value, 1, start, end)
    # Every injury grade holds 伤 (every alcohol reading 酒精 or 乙醇, below): a substring test skips
    # the scan for the words' first characters, most texts having none.
    for m in _INJURY.finditer(text) if "伤" in text else ():
        people = _PEOPLE_BEFORE.search(text, max(0, m.start() - 12), m.start())
        n = _number(people.group("n")) if people else 1
        add(f"injury:{_GRADES[m.group('grade')].value}", n or 1, 1, people.start() if people else m.start(), m.end())
    victims: list[tuple[int, int, str]] = []  # (start, end, name) of deaths told of one named victim
    for d in _DEATH.finditer(text) if "死" in text or "杀害" in text else ():
        clause, end = _clause_bounds(text, d.start())
        if _NO_DEATH.search(text, max(clause, d.start() - 16), d.start()) is not None:
            continue
        if _REPORTED_CRIME.search(text, text.rfind("。", 0, d.start()) + 1, d.start()) is not None:
            continue
        if d.group() == "死亡":
            m = (_DEATH_CAUSE.search(text, max(0, d.start() - 24), d.start())
                 or _LISTED_DEATHS.search(text, max(0, d.start() - 40), d.start()))
            if m is None or "赔偿" in text[max(0, d.start() - 6):d.end() + 3]:
                continue
            counted = m if m.group("n") else _DEAD_COUNT.search(text, max(m.start(), d.start() - 12), d.start())
            n = _number(counted.group("n")) if counted is not None else 1
            start = m.start()
        else:  # a killing verb's 死: the count, if any, in its clause
            if ((d.group() != "致死" and _KILLED_OBJECT.search(text, clause, d.start()) is None)
                    or _NOT_A_KILLING.search(text, clause, end) is not None
                    or in_quotes(text, d.start())):
                continue
            m = _KILLED_COUNT.search(text, max(clause, d.start() - 16), d.start() - 1)
            n = _number(m.group("n")) if m else 1
            start = max(clause, d.start() - 12)
        named = [v for v in _VICTIM.finditer(text, clause, d.start())] if n == 1 else []
        listed = _MORE_VICTIMS.match(text, named[-1].end(), d.start()) if named else None
        if listed is not None:
            n = 1 + len(_LISTED.findall(listed.group()))
        add("deaths", n or 1, 1, start, d.end())
        if named and listed is None:
            victims.append((named[-1].start(), d.end(), named[-1].group("v")))
    # 致被害人甲当场死亡，被害人乙经抢救无效死亡: two deaths, each told as one
    group: list[tuple[int, int, str]] = []
    for victim in [*victims, None]:
        if victim is not None and group and victim[0] - group[-1][1] <= _VICTIMS_APART:
            group.append(victim)
            continue
        names: set[str] = set()
        for _, _, v in group:  # 王某 and 王某某 are taken for one victim
            if not any(v.startswith(u) or u.startswith(v) for u in names):
                names.add(v)
        if len(names) >= 2:
            add("deaths", len(names), 1, group[0][0], group[-1][1])
        group = [victim] if victim is not None else []
    for t in _TIMES.finditer(text):
        m = _OCCURRENCES.search(text, max(0, t.start() - 12), t.start())
        if m is None:
            continue
        value = _number(m.group("num"))
        if value is None or not 1 <= value <= 10_000:
            continue
        if not m.group("pre") and not _OCC_VERB.match(text, t.end()):
            verb = _OCC_VERB_BEFORE.search(text, max(0, m.start() - 12), m.start())
            if verb is None or _in_record(text, m.start()):
                continue
        add("occurrences", value, 1, m.start(), t.end())
    for m in _MANY_TIMES.finditer(text) if "多次" in text else ():
        if not _in_record(text, m.start()):
            add("occurrences", _MANY_TIMES_VALUE, 1, m.start(), m.end())
    for m in _ALCOHOL.finditer(text) if "酒精" in text or "乙醇" in text else ():
        value = _number(m.group("num"))
        if value is None:
            continue
        if not m.group("per").startswith("100"):
            value = round(value * 100, 6)  # mg/ml → mg/100ml
        add("alcohol", value, 1, m.start(), m.end())
    return out


def quantities_for(name: str, findings: Iterable[QuantityFinding]) -> Quantities:
    """One defendant's quantities from the findings about them."""
    mine = [f for f in findings if name in f.names]
    q = Quantities()
    amounts = [f for f in mine if f.kind == "amount"]
    if amounts:
        q.amount_yuan = _measure(_best_amount(amounts))
    for f in mine:
        if f.kind.startswith("drug:"):
            drug = f.kind.removeprefix("drug:")
            have = q.drug_grams.get(drug)
            if have is None or f.value > have.value:
                q.drug_grams[drug] = _measure(f)
    injuries: dict[InjuryGrade, QuantityFinding] = {}
    for f in mine:
        if f.kind.startswith("injury:"):
            grade = InjuryGrade(f.kind.removeprefix("injury:"))
            if grade not in injuries or f.value > injuries[grade].value:
                injuries[grade] = f
    q.injuries = [
        trusted(Injury, {"grade": g, "count": max(1, int(f.value)), "evidence": f.evidence.evidence()})
        for g, f in sorted(injuries.items(), key=lambda kv: kv[0].rank)
    ]
    for kind, attr in (("deaths", "deaths"), ("occurrences", "occurrences"), ("alcohol", "blood_alcohol_mg_per_100ml")):
        found = [f for f in mine if f.kind == kind]
        if found:
            best = max(found, key=lambda f: f.value)
            setattr(q, attr, _measure(best))
    return q


def charge_amounts(name: str, findings: Iterable[QuantityFinding], acts: dict[str, list[str]]) -> dict[str, Measure]:
    """The amount of each charge in ``acts`` (its :attr:`ChargeSpec.amount_acts`) among this defendant's.

    An amount is the charge's whose act word stands nearest before it in its sentence (``收受他人财物28000元``:
    受贿; ``骗取王某30万元``: 诈骗), else first after it in its clause; an amount whose nearest word two of
    the charges share (诈骗 and 合同诈骗: 骗取), or that none names, is no charge's. Of a charge's amounts,
    the best as :func:`quantities_for` chooses it: a stated total over an amount of one act, then the largest.
    """
    words = sorted({w for ws in acts.values() for w in ws}, key=len, reverse=True)
    if not words:
        return {}
    owners = {w: [c for c, ws in acts.items() if w in ws] for w in words}
    pattern = re.compile("|".join(map(re.escape, words)))
    told_with: dict[str, list[QuantityFinding]] = {}
    for f in findings:
        if f.kind != "amount" or name not in f.names:
            continue
        before = list(pattern.finditer(f.before))
        word = before[-1].group() if before else (m.group() if (m := pattern.search(f.after)) else None)
        if word is not None and len(owners[word]) == 1:
            told_with.setdefault(owners[word][0], []).append(f)
    return {charge: _measure(_best_amount(amounts)) for charge, amounts in told_with.items()}


def _best_amount(amounts: list[QuantityFinding]) -> QuantityFinding:
    """The amount among several that is the crime's: a stated total (共计, higher score) over the amount of
    one act, then the largest; of equals, the first told."""
    return max(amounts, key=lambda f: (f.score, f.value))


def _measure(finding: QuantityFinding) -> Measure:
    """The finding's value and evidence, the value a float as validation makes it (``1`` → ``1.0``)."""
    return trusted(Measure, {"value": float(finding.value), "evidence": finding.evidence.evidence()})
