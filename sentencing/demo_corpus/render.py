"""Writing a sentenced draft as a first-instance criminal judgment (刑事判决书) in the courts' own style.

The document follows real judgments section by section: court and case number, 公诉机关, each
defendant's header line, the procedure, 指控 and 经审理查明 (the fact section, JuDGE's ``text``),
本院认为 with every circumstance the court relied on, and 判决如下 with each defendant's sentence
written by :func:`sentencing.sentence.format_sentence`. Every document opens with the synthetic
marker, so no reader mistakes it for a real judgment.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentencing.case import CircumstanceCode, Role
from sentencing.demo_corpus.people import (
    add_days,
    add_months,
    between,
    date_text,
    date_text_chinese,
    pick,
)
from sentencing.demo_corpus.scenario import VICTIMLESS, Draft, Offence, Person
from sentencing.numerals import format_chinese_integer
from sentencing.sentence import Sentence, SentenceKind, format_sentence

SYNTHETIC_MARKER = "【合成示例数据，非真实判决】"

C = CircumstanceCode
_PLACES = ("某小区", "某超市", "某KTV门口", "某菜市场", "某网吧", "某宾馆", "某工地", "某村", "某路口", "某酒吧",
           "某商场", "某公园", "某停车场", "某出租屋")
_ROADS = ("人民路", "解放路", "建设路", "中山路", "长江路", "环城路", "迎宾大道", "新华路", "胜利路")
_COMPANIES = ("某贸易有限公司", "某商贸有限公司", "某科技有限公司", "某建材有限公司", "某投资咨询有限公司",
              "某物流有限公司")
_PLATE_LETTERS = "ABCDEFGHJK"
_NUMBERED = "一二三四五六七八九十"


@dataclass(slots=True)
class Rendered:
    """The document and its sections (the sections are slices of the document's text)."""

    document: str
    facts: str
    """指控 … 足以认定: JuDGE's ``text``; may contain the prosecutor's recommendation."""
    facts_clean: str
    """The fact section without the prosecutor's recommendation (what a model may read)."""
    reasoning: str
    judgment: str
    articles: list[int]


def render(draft: Draft) -> Rendered:
    rng = draft.rng
    court = draft.court
    assert court is not None
    arabic = rng.random() < 0.15
    defendants = draft.defendants
    names = "、".join(p.name for p in defendants)
    charges = _charge_list(draft.offences)

    head = [SYNTHETIC_MARKER]
    if rng.random() < 0.2:
        head.append(f"{defendants[0].name}{charges}一审刑事判决书")
    case_number = case_number_of(draft)
    head += [court.name, "刑事判决书", case_number]
    header_lines = [f"公诉机关{court.procuratorate}。"]
    header_lines += [_defendant_header(draft, p) for p in defendants]
    header_lines.append(_procedure(draft, names, charges))

    recommendation = _recommendation(draft)
    facts_body = _facts_body(draft)
    evidence = _evidence(draft)
    if rng.random() < 0.45:
        charged = "公诉机关指控：" + facts_body
        closing = f"上述事实，被告人{names}在开庭审理过程中亦无异议，且有{evidence}等证据证实，足以认定。"
        facts_parts = [charged + recommendation, closing]
        clean_parts = [charged, closing]
    else:
        main = draft.offences[0]
        short = (
            f"公诉机关指控，{date_text(main.start)}，被告人{_names(main.participants)}{main.profile.charged}。"
            f"公诉机关认为，{_indicted(draft).replace('犯', '的行为已构成')}，提请本院依法判处。"
        )
        found = "经审理查明：" + facts_body
        closing = f"上述事实，有{evidence}等证据证实，足以认定。"
        facts_parts = [short + recommendation, found, closing]
        clean_parts = [short, found, closing]
    reasoning, articles = _reasoning(draft)
    judgment = _judgment(draft, arabic)
    tail = _tail(draft)
    facts = " ".join(facts_parts)
    document = " ".join([*head, *header_lines, facts, reasoning, judgment, tail])
    return Rendered(
        document=document,
        facts=facts,
        facts_clean=" ".join(clean_parts),
        reasoning=reasoning,
        judgment=judgment,
        articles=articles,
    )


def case_number_of(draft: Draft) -> str:
    assert draft.court is not None
    return f"（{draft.year}）{draft.province.province.abbreviation}{draft.court.code}刑初{draft.serial}号"


def _names(people: list[Person]) -> str:
    return "、".join(p.name for p in people)


def _charge_list(offences: list[Offence]) -> str:
    seen: list[str] = []
    for o in offences:
        if o.profile.name not in seen:
            seen.append(o.profile.name)
    return "罪、".join(seen)


# --------------------------------------------------------------------------- header


def _defendant_header(draft: Draft, p: Person) -> str:
    rng = draft.rng
    court = draft.court
    assert court is not None
    born = date_text(p.birth)
    born_text = f"{born}出生" if rng.random() < 0.8 else f"{born}生"
    home = court.province.full_name + court.place.removeprefix(court.province.full_name)
    parts = [f"被告人{p.name}，{'男' if p.male else '女'}，{born_text}，{p.ethnicity}，{p.education}，{p.occupation}，"
             f"户籍地{home}，住{court.place}。"]
    if p.prior is not None:
        pr = p.prior
        parts.append(
            f"{date_text(pr.sentenced)}因犯{pr.charge}罪被判处有期徒刑{_duration(pr.months)}，"
            f"{date_text(pr.released)}刑满释放。"
        )
    charge = p.offences[0].profile.name
    detained = date_text(p.detained)
    s = p.sentence
    in_custody = s is not None and s.kind in (
        SentenceKind.FIXED_TERM, SentenceKind.DETENTION, SentenceKind.LIFE, SentenceKind.DEATH_SUSPENDED,
        SentenceKind.DEATH,
    ) and s.probation_months is None
    if charge == "危险驾驶" and not in_custody:
        parts.append(f"因涉嫌犯{charge}罪于{detained}被{court.police}取保候审。")
    elif in_custody:
        arrested = add_days(p.detained, between(rng, 7, 30))
        parts.append(
            f"因涉嫌犯{charge}罪于{detained}被{court.police}刑事拘留，{_same_year(p.detained, arrested)}被逮捕。"
            f"现羁押于{court.jail}。"
        )
    else:
        bailed = add_days(p.detained, between(rng, 3, 30))
        parts.append(
            f"因涉嫌犯{charge}罪于{detained}被{court.police}刑事拘留，{_same_year(p.detained, bailed)}被取保候审。"
        )
    return "".join(parts)


def _same_year(first, second) -> str:
    if first.year == second.year:
        return f"同年{second.month}月{second.day}日"
    return date_text(second)


def _duration(months: int) -> str:
    years, rest = divmod(months, 12)
    out = f"{format_chinese_integer(years)}年" if years else ""
    return out + (f"{format_chinese_integer(rest)}个月" if rest else "")


def _indicted(draft: Draft) -> str:
    """``被告人甲犯A罪、B罪，被告人乙、丙犯A罪``: defendants grouped by the charges they face."""
    groups: dict[str, list[Person]] = {}
    for p in draft.defendants:
        groups.setdefault(_charge_list(p.offences), []).append(p)
    return "，".join(f"被告人{_names(people)}犯{charges}罪" for charges, people in groups.items())


def _procedure(draft: Draft, names: str, charges: str) -> str:
    rng = draft.rng
    court = draft.court
    assert court is not None
    # Indicted after the last arrest, some weeks before the judgment.
    room = (draft.judged - max(p.detained for p in draft.defendants)).days
    filed = add_days(draft.judged, -between(rng, min(5, room), max(min(5, room), min(70, room - 10))))
    short = court.place[-3] if len(court.place) >= 3 else court.place[0]
    doc = f"{short}检刑诉〔{draft.year}〕{between(rng, 20, 900)}号"
    light = all(
        p.sentence is not None and (p.sentence.months or 0) <= 36 and p.sentence.kind not in _CAPITAL
        for p in draft.defendants
    )
    plea = all(p.has(C.PLEA_AGREEMENT) for p in draft.defendants)
    private = any(p.has(C.JUVENILE) for p in draft.defendants) or any(
        o.profile.name == "强奸" for o in draft.offences
    )
    if court.intermediate or not light:
        mode = "依法组成合议庭"
    elif plea and draft.year >= 2019 and rng.random() < 0.5:
        mode = "依法适用刑事案件速裁程序，实行独任审判"
    elif rng.random() < 0.7:
        mode = "依法适用简易程序，实行独任审判"
    else:
        mode = "依法组成合议庭"
    hearing = "不公开开庭审理了本案" if private else "公开开庭审理了本案"
    prosecutor = draft.names.victim()
    return (
        f"{court.procuratorate}以{doc}起诉书指控{_indicted(draft)}，于{date_text(filed)}向本院提起公诉。"
        f"本院受理后，{mode}，{hearing}。{court.procuratorate}指派检察员{prosecutor}出庭支持公诉，"
        f"被告人{names}到庭参加诉讼。现已审理终结。"
    )


_CAPITAL = (SentenceKind.LIFE, SentenceKind.DEATH_SUSPENDED, SentenceKind.DEATH)


# --------------------------------------------------------------------------- facts


def _facts_body(draft: Draft) -> str:
    paragraphs: list[str] = []
    several = len(draft.offences) > 1
    for i, o in enumerate(draft.offences):
        text = _offence_facts(draft, o)
        if several:
            text = f"{_NUMBERED[i]}、{o.profile.name}事实 {text}"
        paragraphs.append(text)
    for p in draft.defendants:
        paragraphs.append(_arrest_and_after(draft, p))
    return " ".join(x for x in paragraphs if x)


def _offence_facts(draft: Draft, o: Offence) -> str:
    rng = draft.rng
    profile = o.profile
    if o.attempt:
        template = pick(rng, profile.attempt_facts)
    elif o.deaths and profile.death_facts:
        template = pick(rng, profile.death_facts)
    elif o.occurrences:
        template = pick(rng, profile.counted_facts)
    elif o.start == o.end and profile.single_facts:
        template = pick(rng, profile.single_facts)
    else:
        template = pick(rng, [t for t in profile.facts if "{date2}" in t] or profile.facts)
    court = draft.court
    assert court is not None
    victim, victim2 = o.victims
    lead = o.participants[0].name
    values = {
        "who": "被告人" + _names(o.participants),
        "who_short": lead,
        "date": date_text(o.start),
        "date2": date_text(o.end),
        "time": f"{between(rng, 0, 23)}时许",
        "place": court.place.removeprefix(court.province.full_name) + pick(rng, _PLACES),
        "victim": victim,
        "victim2": victim2,
        "amount": _amount_text(draft, o.amount) if o.amount is not None else "",
        "times": f"先后{_count(o.occurrences)}次" if o.occurrences else "",
        "item": pick(rng, profile.items),
        "method": pick(rng, profile.methods),
        "weapon": pick(rng, profile.weapons),
        "drugs": "、".join(f"{name}{_grams(g)}克" for name, g in o.drugs),
        "price": str(between(rng, 2, 12) * 50),
        "injury": o.injury.label if o.injury is not None else "",
        "hours": str(between(rng, 4, 60)),
        "bac": _bac_text(draft, o.bac),
        "plate": f"{draft.province.province.abbreviation}{pick(rng, _PLATE_LETTERS)}×××××",
        "road": pick(rng, _ROADS),
        "consequence": _consequence(o),
        "liability": "全部" if rng.random() < 0.6 else "主要",
        "company": court.place.removeprefix(court.province.full_name)[:2] + pick(rng, _COMPANIES),
    }
    return template.format_map(values)


def _count(n: int | None) -> str:
    return "两" if n == 2 else format_chinese_integer(n or 0)


def _grams(g: float) -> str:
    return f"{g:.2f}".rstrip("0").rstrip(".")


def _amount_text(draft: Draft, yuan: int) -> str:
    r = draft.rng.random()
    if yuan >= 10_000 and yuan % 1000 == 0 and r < 0.25:
        return f"人民币{_grams(yuan / 10_000)}万元"
    if r < 0.75:
        return f"人民币{yuan}元"
    return f"{yuan}元"


def _bac_text(draft: Draft, bac: float | None) -> str:
    if bac is None:
        return ""
    value = f"{bac:.1f}".rstrip("0").rstrip(".")
    return f"{value}mg/100ml" if draft.rng.random() < 0.8 else f"{value}毫克/100毫升"


def _consequence(o: Offence) -> str:
    victim, victim2 = o.victims
    if o.deaths >= 2:
        text = f"造成{victim}、{victim2}二人死亡"
    elif o.deaths == 1:
        text = f"造成{victim}经抢救无效死亡"
    else:
        text = ""
    if o.injured:
        hurt = victim2 if o.deaths else victim
        if o.injured == 1:
            text += ("，" if text else "") + f"{hurt}受伤，经鉴定，{hurt}的损伤程度为重伤二级"
        else:
            text += ("，" if text else "") + f"{hurt}等{format_chinese_integer(o.injured)}人受伤，经鉴定均为重伤二级"
    return text


def _arrest_and_after(draft: Draft, p: Person) -> str:
    """另查明: how the defendant came to the police, and what was done for the victims since."""
    court = draft.court
    assert court is not None
    main = p.offences[0]
    victim = main.victims[0]
    out: list[str] = []
    when = date_text(p.detained)
    if p.has(C.SURRENDER):
        if main.profile.name == "交通肇事":
            out.append(f"事故发生后，被告人{p.name}拨打110报警并在现场等候处理，到案后如实供述了自己的罪行。")
        else:
            out.append(f"{when}，被告人{p.name}主动到{court.police}投案，并如实供述了自己的犯罪事实。")
    elif p.has(C.CONFESSION):
        out.append(f"{when}，被告人{p.name}被公安民警抓获，到案后如实供述了自己的犯罪事实。")
    elif main.profile.name != "危险驾驶":
        out.append(f"{when}，被告人{p.name}被公安民警抓获归案。")
    if p.has(C.MERITORIOUS) or p.has(C.MAJOR_MERITORIOUS):
        out.append(f"被告人{p.name}到案后揭发他人犯罪行为，经查证属实。")
    if p.has(C.PLEA_AGREEMENT):
        out.append(f"被告人{p.name}自愿认罪认罚，在值班律师的见证下签署了认罪认罚具结书。")
    forgiven = p.has(C.FORGIVENESS)
    if p.has(C.RESTITUTION):
        if main.profile.name in VICTIMLESS:
            out.append(f"案发后，被告人{p.name}退缴了全部违法所得。")
        else:
            ending = "，并取得被害人的谅解。" if forgiven else "。"
            out.append(f"案发后，被告人{p.name}已退赔被害人全部经济损失{ending}")
    elif p.has(C.COMPENSATION):
        out.append(
            f"案发后，被告人{p.name}赔偿了被害人{victim}的经济损失"
            + (f"，{victim}对被告人{p.name}的行为表示谅解。" if forgiven else "。")
        )
    elif p.has(C.RECONCILIATION):
        out.append(f"案发后，被告人{p.name}与被害人{victim}自愿达成刑事和解协议。")
    elif forgiven:
        out.append(f"被害人{victim}对被告人{p.name}的行为表示谅解。")
    return "".join(out)


_EVIDENCE = {
    "amount": "价格认定结论书、扣押清单、转账记录",
    "drugs": "毒品称量笔录、理化检验报告、扣押清单",
    "injury": "法医学人体损伤程度鉴定意见书、病历资料",
    "alcohol": "血液酒精含量检验鉴定意见书、呼气酒精含量检测单",
    "traffic": "道路交通事故认定书、尸体检验报告、现场勘查笔录",
    "none": "现场勘验笔录、辨认笔录",
}


def _evidence(draft: Draft) -> str:
    main = draft.offences[0]
    victimless = main.profile.name in VICTIMLESS or main.profile.quantity in ("drugs", "alcohol")
    statement = "" if victimless else f"被害人{main.victims[0]}的陈述，"
    return (
        f"{statement}证人{main.victims[1]}的证言，{_EVIDENCE[main.profile.quantity]}，"
        "受案登记表、到案经过、户籍证明，被告人的供述与辩解"
    )


def _recommendation(draft: Draft) -> str:
    """The prosecutor's 量刑建议 in 认罪认罚 cases (courts usually adopt it); not a model input."""
    rng = draft.rng
    if len(draft.defendants) != 1 or len(draft.offences) != 1:
        return ""
    p = draft.defendants[0]
    if not p.has(C.PLEA_AGREEMENT) or p.sentence is None or rng.random() >= 0.35:
        return ""
    if p.sentence.kind in (SentenceKind.EXEMPT, *_CAPITAL):
        return ""
    return f"公诉机关认为被告人{p.name}自愿认罪认罚，建议判处{format_sentence(p.sentence)}。"


# --------------------------------------------------------------------------- reasoning

_CLAUSES: dict[str, tuple[str, str]] = {
    # key: (one defendant, several defendants) — {who} is 被告人 and the names.
    "juvenile": ("{who}犯罪时已满十六周岁不满十八周岁，系未成年人，依法应当从轻或者减轻处罚",
                 "{who}犯罪时均已满十六周岁不满十八周岁，均系未成年人，依法应当从轻或者减轻处罚"),
    "elderly": ("{who}犯罪时已满七十五周岁，依法可以从轻或者减轻处罚",
                "{who}犯罪时均已满七十五周岁，依法可以从轻或者减轻处罚"),
    "attempt": ("{who}已经着手实行犯罪，由于意志以外的原因而未得逞，系犯罪未遂，依法可以比照既遂犯从轻或者减轻处罚",
                "{who}已经着手实行犯罪，由于意志以外的原因而未得逞，系犯罪未遂，依法可以比照既遂犯从轻或者减轻处罚"),
    "recidivist": (
        "{who}曾因故意犯罪被判处有期徒刑，在刑罚执行完毕后五年内再犯应当判处有期徒刑以上刑罚之罪，系累犯，依法应当从重处罚",
        "{who}曾因故意犯罪被判处有期徒刑，在刑罚执行完毕后五年内再犯应当判处有期徒刑以上刑罚之罪，均系累犯，依法应当从重处罚",
    ),
    "prior_record": ("{who}有犯罪前科，可酌情从重处罚", "{who}均有犯罪前科，可酌情从重处罚"),
    "surrender": ("{who}犯罪以后自动投案，如实供述自己的罪行，是自首，依法可以从轻处罚",
                  "{who}犯罪以后自动投案，如实供述自己的罪行，均系自首，依法可以从轻处罚"),
    "confession": ("{who}到案后如实供述自己的罪行，系坦白，依法可以从轻处罚",
                   "{who}到案后均能如实供述自己的罪行，均系坦白，依法可以从轻处罚"),
    "meritorious": ("{who}到案后揭发他人犯罪行为，经查证属实，有立功表现，依法可以从轻处罚",
                    "{who}到案后揭发他人犯罪行为，经查证属实，均有立功表现，依法可以从轻处罚"),
    "major_meritorious": ("{who}有重大立功表现，依法可以减轻处罚", "{who}均有重大立功表现，依法可以减轻处罚"),
    "court_plea": ("{who}当庭自愿认罪，可酌情从轻处罚", "{who}均当庭自愿认罪，可酌情从轻处罚"),
    "plea_agreement": ("{who}自愿认罪认罚，依法可以从宽处理", "{who}均自愿认罪认罚，依法可以从宽处理"),
    "restitution": ("{who}已退赔被害人全部经济损失，可酌情从轻处罚", "{who}均已退赔被害人经济损失，可酌情从轻处罚"),
    "restitution_forgiveness": ("{who}已退赔被害人全部经济损失并取得谅解，可酌情从轻处罚",
                                "{who}均已退赔被害人经济损失并取得谅解，可酌情从轻处罚"),
    "surrendered_gains": ("{who}已退缴违法所得，可酌情从轻处罚", "{who}均已退缴违法所得，可酌情从轻处罚"),
    "compensation": ("{who}积极赔偿被害人经济损失，可酌情从轻处罚", "{who}均积极赔偿被害人经济损失，可酌情从轻处罚"),
    "compensation_forgiveness": ("{who}积极赔偿被害人经济损失并取得谅解，可酌情从轻处罚",
                                 "{who}均积极赔偿被害人经济损失并取得谅解，可酌情从轻处罚"),
    "forgiveness": ("{who}取得了被害人的谅解，可酌情从轻处罚", "{who}均取得了被害人的谅解，可酌情从轻处罚"),
    "reconciliation": ("{who}与被害人达成刑事和解，可以从宽处罚", "{who}均与被害人达成刑事和解，可以从宽处罚"),
}
_CLAUSE_ORDER = tuple(_CLAUSES)


def _clause_keys(p: Person) -> list[str]:
    """The reasoning's clauses about one defendant, in the order judgments discuss them."""
    keys = [c.value for c in p.circumstances if c.value in _CLAUSES]
    if p.has(C.RECIDIVIST):
        keys.remove("prior_record")  # the prior conviction is weighed once, as 累犯
    forgiven = p.has(C.FORGIVENESS)
    if p.has(C.RESTITUTION):
        keys.remove("restitution")
        if p.offences[0].profile.name in VICTIMLESS:
            keys.append("surrendered_gains")
        else:
            keys.append("restitution_forgiveness" if forgiven else "restitution")
        if forgiven:
            keys.remove("forgiveness")
    if p.has(C.COMPENSATION) and forgiven:
        keys.remove("compensation")
        keys.remove("forgiveness")
        keys.append("compensation_forgiveness")
    return sorted(keys, key=_CLAUSE_ORDER.index)


def _degree(label: str) -> str:
    """The 本院认为 wording of a statutory tier (``数额巨大或者有其他严重情节`` → ``数额巨大``)."""
    if label in ("基本犯",) or "(" in label:
        return ""
    return label.split("或者")[0].split("、")[0].split("，")[0]


def _reasoning(draft: Draft) -> tuple[str, list[int]]:
    rng = draft.rng
    sentences: list[str] = []
    first = True
    for o in draft.offences:
        p0 = o.participants[0]
        idx = p0.offences.index(o)
        degree = _degree(p0.degrees[idx]) if idx < len(p0.degrees) else ""
        drugs = "、".join(f"{name}{_grams(g)}克" for name, g in o.drugs)
        if o.occurrences and o.occurrences >= 3:
            times = "多次"
        elif o.occurrences == 2:
            times = "两次"
        else:
            times = ""
        if o.injury is not None and degree.startswith("致人"):
            # 致人轻伤（一级）: the court names the grade it found, not just the tier.
            degree = f"致人{o.injury.label[:2]}（{o.injury.label[2:]}）"
        finding = o.profile.finding.format_map({"degree": degree, "times_finding": times, "drugs": drugs}).rstrip("，")
        both = "均" if o.joint else ""
        if first:
            sentences.append(f"本院认为，被告人{_names(o.participants)}{finding}，其行为{both}已构成{o.profile.name}罪")
            first = False
        else:
            sentences.append(f"被告人{_names(o.participants)}{finding}，其行为又构成{o.profile.name}罪")
    several = [p for p in draft.defendants if len(p.offences) > 1]
    text = "；".join(sentences) + "。"
    if several:
        text += f"被告人{_names(several)}一人犯数罪，依法应当数罪并罚。"
    text += "公诉机关指控的犯罪事实清楚，证据确实、充分，指控的罪名成立，本院予以支持。"
    main = draft.offences[0]
    if main.joint:
        text += _roles_text(main)
    grouped = rng.random() < 0.4
    per_person = [(p, _clause_keys(p)) for p in draft.defendants]
    clauses: list[str] = []
    if grouped:
        for key in _CLAUSE_ORDER:
            people = [p for p, keys in per_person if key in keys]
            if not people:
                continue
            single, plural = _CLAUSES[key]
            clauses.append((plural if len(people) > 1 else single).format(who="被告人" + _names(people)))
    else:
        for p, keys in per_person:
            for key in keys:
                clauses.append(_CLAUSES[key][0].format(who="被告人" + p.name))
    if clauses:
        text += "。".join(clauses) + "。"
    articles, la = _articles(draft)
    text += (
        f"根据被告人的犯罪事实、性质、情节和对社会的危害程度，依照{articles}之规定，判决如下："
    )
    return text, la


def _roles_text(o: Offence) -> str:
    principals = [p for p in o.participants if p.role is Role.PRINCIPAL]
    accessories = [p for p in o.participants if p.role is Role.ACCESSORY]
    coerced = [p for p in o.participants if p.role is Role.COERCED]
    parts: list[str] = []
    if principals:
        both = "均" if len(principals) > 1 else ""
        parts.append(f"被告人{_names(principals)}起主要作用，{both}系主犯")
    if accessories:
        both = "均" if len(accessories) > 1 else ""
        parts.append(f"被告人{_names(accessories)}起次要、辅助作用，{both}系从犯，依法应当从轻、减轻处罚")
    if coerced:
        parts.append(f"被告人{_names(coerced)}系被胁迫参加犯罪，系胁从犯，依法应当减轻处罚")
    return "在共同犯罪中，" + "；".join(parts) + "。"


def _articles(draft: Draft) -> tuple[str, list[int]]:
    """The articles cited (依照…之规定) and their numbers for JuDGE's ``la``."""
    cited: dict[str, int] = {}  # text → article number, in citation order

    def cite(number: int, text: str) -> None:
        cited.setdefault(text, number)

    people = draft.defendants
    for o in draft.offences:
        cite(o.profile.article, o.profile.article_cn)
    if draft.offences[0].joint:
        cite(25, "第二十五条第一款")
    roles = {p.role for p in people}
    if Role.PRINCIPAL in roles:
        cite(26, "第二十六条第一款、第四款")
    if Role.ACCESSORY in roles:
        cite(27, "第二十七条")
    if Role.COERCED in roles:
        cite(28, "第二十八条")
    codes = {c for p in people for c in p.circumstances}
    for code, number, text in (
        (C.JUVENILE, 17, "第十七条第一款、第四款"),
        (C.ELDERLY, 17, "第十七条之一"),
        (C.ATTEMPT, 23, "第二十三条"),
        (C.RECIDIVIST, 65, "第六十五条第一款"),
        (C.SURRENDER, 67, "第六十七条第一款"),
        (C.CONFESSION, 67, "第六十七条第三款"),
        (C.MERITORIOUS, 68, "第六十八条"),
        (C.MAJOR_MERITORIOUS, 68, "第六十八条"),
    ):
        if code in codes:
            cite(number, text)
    sentences = [p.sentence for p in people if p.sentence is not None]
    if any(len(p.offences) > 1 for p in people):
        cite(69, "第六十九条")
    if any(s.probation_months for s in sentences):
        cite(72, "第七十二条第一款、第三款")
        cite(73, "第七十三条第一款、第二款、第三款")
    if any(s.kind is SentenceKind.EXEMPT for s in sentences):
        cite(37, "第三十七条")
    if any(s.kind is SentenceKind.SURVEILLANCE for s in sentences):
        cite(38, "第三十八条")
    if any(s.fine_yuan for s in sentences):
        cite(52, "第五十二条")
        cite(53, "第五十三条")
    if any(s.political_rights_for_life for s in sentences):
        cite(57, "第五十七条第一款")
    if any(s.confiscation for s in sentences):
        cite(59, "第五十九条")
    cite(64, "第六十四条")
    text = "《中华人民共和国刑法》" + "、".join(cited)
    if C.PLEA_AGREEMENT in codes:
        text += "，《中华人民共和国刑事诉讼法》第十五条"
    return text, list(dict.fromkeys(cited.values()))


# --------------------------------------------------------------------------- judgment


def _judgment(draft: Draft, arabic: bool) -> str:
    rng = draft.rng
    lines: list[str] = []
    for p in draft.defendants:
        note = _custody_note(draft, p)
        lines.append(_sentence_line(p, arabic) + (" " + note if note else ""))
    extras: list[str] = []
    main = draft.offences[0]
    if main.profile.quantity == "drugs":
        extras.append("扣押在案的毒品予以没收，由公安机关依法处理。")
    elif main.profile.name == "开设赌场":
        extras.append("扣押在案的赌资及赌具予以没收。")
    elif main.profile.compensable == "restitution" and main.profile.name not in VICTIMLESS and not main.attempt:
        owing = [p for p in main.participants if not p.has(C.RESTITUTION)]
        if owing and rng.random() < 0.5:
            extras.append(f"责令被告人{_names(owing)}退赔被害人的经济损失。")
    elif main.profile.name in ("抢劫", "故意伤害", "寻衅滋事", "聚众斗殴") and rng.random() < 0.3:
        extras.append("扣押在案的作案工具予以没收。")
    numbered = len(lines) + len(extras) > 1
    items = lines + extras
    if numbered:
        items = [f"{format_chinese_integer(i + 1)}、{item}" for i, item in enumerate(items)]
    return " ".join(items)


def _sentence_line(p: Person, arabic: bool) -> str:
    assert p.sentence is not None
    if p.charge_sentences:
        parts = [
            f"犯{o.profile.name}罪，{_imposed(s, arabic)}" for o, s in zip(p.offences, p.charge_sentences, strict=True)
        ]
        return f"被告人{p.name}" + "；".join(parts) + f"，决定执行{format_sentence(p.sentence, arabic=arabic)}。"
    return f"被告人{p.name}犯{p.offences[0].profile.name}罪，{_imposed(p.sentence, arabic)}。"


def _imposed(s: Sentence, arabic: bool) -> str:
    if s.kind is SentenceKind.EXEMPT:
        return "免予刑事处罚"
    return "判处" + format_sentence(s, arabic=arabic)


def _custody_note(draft: Draft, p: Person) -> str:
    s = p.sentence
    assert s is not None
    fine = "罚金已缴纳。" if draft.rng.random() < 0.4 else "罚金于本判决生效后十日内缴纳。"
    fine = fine if s.fine_yuan else ""
    if s.probation_months:
        return f"（缓刑考验期限，从判决确定之日起计算。{fine}）"
    if s.kind in (SentenceKind.FIXED_TERM, SentenceKind.DETENTION):
        end = add_days(add_months(p.detained, s.months or 0), -1)
        return (
            "（刑期从判决执行之日起计算。判决执行以前先行羁押的，羁押一日折抵刑期一日，"
            f"即自{date_text(p.detained)}起至{date_text(end)}止。{fine}）"
        )
    if s.kind is SentenceKind.SURVEILLANCE:
        return f"（管制期间从判决执行之日起计算。{fine}）"
    if s.kind is SentenceKind.FINE_ONLY:
        return "（罚金于本判决生效后十日内缴纳。）"
    return ""


def _tail(draft: Draft) -> str:
    rng = draft.rng
    court = draft.court
    assert court is not None
    appeal = (
        f"如不服本判决，可在接到判决书的第二日起十日内，通过本院或者直接向{court.appeal_court}提出上诉。"
        "书面上诉的，应当提交上诉状正本一份，副本二份。"
    )
    names = draft.names
    if court.intermediate or rng.random() < 0.35:
        bench = f"审判长{names.victim()} 审判员{names.victim()} 人民陪审员{names.victim()}"
    else:
        bench = f"审判员{names.victim()}"
    return f"{appeal} {bench} {date_text_chinese(draft.judged)} 书记员{names.victim()}"
