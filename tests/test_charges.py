"""The charge catalogue: data loads, validates, resolves names and carries its sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentencing.charges import (
    DEFAULT_CHARGES_PATH,
    CatalogueError,
    ChargeCatalogue,
    ChargeSpec,
    Family,
    Tier,
    default_catalogue,
    derive_tiers_from_article,
)

# The 23 crimes of 法发〔2021〕21号 plus the two of the 2024 opinion (DOMAIN.md §3).
GUIDELINE_CRIMES = [
    "交通肇事", "危险驾驶", "非法吸收公众存款", "集资诈骗", "信用卡诈骗", "合同诈骗", "故意伤害", "强奸",
    "非法拘禁", "抢劫", "盗窃", "诈骗", "抢夺", "职务侵占", "敲诈勒索", "妨害公务", "聚众斗殴", "寻衅滋事",
    "掩饰、隐瞒犯罪所得、犯罪所得收益", "走私、贩卖、运输、制造毒品", "非法持有毒品", "容留他人吸毒",
    "引诱、容留、介绍卖淫", "开设赌场", "帮助信息网络犯罪活动",
]  # fmt: skip


@pytest.fixture(scope="module")
def catalogue() -> ChargeCatalogue:
    return default_catalogue()


def test_catalogue_has_a_version_and_the_guideline_crimes(catalogue: ChargeCatalogue) -> None:
    assert catalogue.version.startswith("liangxing-guideline-")
    for name in GUIDELINE_CRIMES:
        spec = catalogue.resolve(name)
        assert spec is not None, name
        assert spec.name == name
        assert spec.guideline, f"{name} should cite its guideline clause"
        assert not spec.derived
    assert len(catalogue.charges()) >= 200


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("盗窃", "盗窃"),
        ("盗窃罪", "盗窃"),
        (" 盗窃罪 ", "盗窃"),
        ("贩卖毒品", "走私、贩卖、运输、制造毒品"),
        ("贩卖毒品罪", "走私、贩卖、运输、制造毒品"),
        ("帮信", "帮助信息网络犯罪活动"),
        ("醉驾", "危险驾驶"),
        ("掩饰、隐瞒犯罪所得", "掩饰、隐瞒犯罪所得、犯罪所得收益"),
        ("故意杀人罪", "故意杀人"),
    ],
)
def test_resolve_aliases(catalogue: ChargeCatalogue, alias: str, canonical: str) -> None:
    spec = catalogue.resolve(alias)
    assert spec is not None
    assert spec.name == canonical


def test_resolve_unknown_and_empty(catalogue: ChargeCatalogue) -> None:
    assert catalogue.resolve("外星人入侵") is None
    assert catalogue.resolve("") is None
    assert catalogue.resolve("罪") is None


def test_resolve_all_rejoins_names_split_at_the_enumeration_comma(catalogue: ChargeCatalogue) -> None:
    # An importer that splits at every 、 turns one charge into four fragments.
    resolved = catalogue.resolve_all(["走私", "贩卖", "运输", "制造毒品", "盗窃", "外星人入侵"])
    assert [(name, spec.name if spec else None) for name, spec in resolved] == [
        ("走私、贩卖、运输、制造毒品", "走私、贩卖、运输、制造毒品"),
        ("盗窃", "盗窃"),
        ("外星人入侵", None),
    ]


def test_every_number_carries_its_source(catalogue: ChargeCatalogue) -> None:
    for spec in catalogue.charges():
        assert spec.statutory_source
        assert spec.family in Family
        for tier in spec.tiers:
            assert tier.start_source, f"{spec.name}/{tier.label}"
            assert tier.derived or not spec.derived
            for inc in tier.increments:
                assert inc.source
        for name, threshold in spec.thresholds.items():
            assert threshold.source, f"{spec.name}.{name}"
        if spec.carries_fine:
            assert spec.fine is not None and spec.fine.source
    for rule in catalogue.circumstances.values():
        assert rule.basis
    assert catalogue.drug_source


def test_tiers_are_ordered_lightest_first(catalogue: ChargeCatalogue) -> None:
    for spec in catalogue.charges():
        floors = [t.floor_months for t in spec.tiers]
        assert floors == sorted(floors), spec.name


def test_tier_labels_name_their_tier(catalogue: ChargeCatalogue) -> None:
    """A label is shown to prosecutors and groups the cohort of similar cases: one per tier, in the
    article's words or 基本犯, never a fragment cut out of a clause (``或者进行非法活动的``)."""
    fragment = ("或者", "是", "对犯", "过失犯前款", "没收", "差额部分", "帮助犯罪分子逃避", "将境外", "获取该",
                "对单位判")
    for spec in catalogue.charges():
        labels = [t.label for t in spec.tiers]
        assert len(set(labels)) == len(labels), spec.name
        for label in labels:
            assert not label.startswith(fragment) and not label.endswith(("、", "或者", "，")), (spec.name, label)
            # nor a placeholder that names nothing (37 tiers were 加重档1 or 有下列情形之一的)
            assert not label.startswith("加重档") and label != "有下列情形之一的", (spec.name, label)
    with pytest.raises(ValueError, match="share a label"):
        theft = catalogue.resolve("盗窃")
        assert theft is not None
        type(theft).model_validate({**theft.model_dump(), "tiers": [theft.tiers[0].model_dump()] * 2})


def _amount_threshold(spec: ChargeSpec, tier: Tier) -> tuple[str, float] | None:
    for condition in tier.when:
        if condition.quantity == "amount_yuan" and condition.threshold is not None:
            return condition.threshold, spec.thresholds[condition.threshold].value
    return None


def test_derived_amount_tiers_move_with_the_amount(catalogue: ChargeCatalogue) -> None:
    """A derived tier that an amount selects, with a heavier tier selected by a higher amount, adds a
    month per so many yuan beyond its threshold, reaching its ceiling at the next threshold (rule set
    2026.12.8). The figures are written out in charges.toml: this holds them to the thresholds, the
    starting point and the ceiling they were worked out from, so that none goes stale."""
    checked = 0
    for spec in catalogue.charges():
        amounts = [_amount_threshold(spec, t) for t in spec.tiers]
        for tier, own in zip(spec.tiers, amounts, strict=True):
            if own is None or not tier.derived or not isinstance(tier.ceiling, int):
                continue
            higher = [a[1] for a in amounts if a is not None and a[1] > own[1]]
            if not higher or any(not i.source.startswith("derived") for i in tier.increments):
                continue  # the heaviest amount tier, or one a guideline text prices
            derived = [i for i in tier.increments if i.source.startswith("derived: the point reaches the tier")]
            assert len(derived) == 1, (spec.name, tier.label)
            inc = derived[0]
            lo, hi = tier.start
            start = lo + catalogue.method.start_position * (hi - lo) if tier.start_point is None else tier.start_point
            assert inc.quantity == "amount_yuan" and inc.above_threshold == own[0] and inc.months == 1
            assert inc.max_months == pytest.approx(tier.ceiling - start)
            assert inc.per == pytest.approx((min(higher) - own[1]) / (tier.ceiling - start), rel=0.005)
            checked += 1
    assert checked >= 20


def test_every_charge_an_amount_prices_names_the_acts_its_amount_is_told_with(catalogue: ChargeCatalogue) -> None:
    """Of a defendant's several charges that an amount prices (数罪), the parser gives each the amount told
    with one of its acts (ChargeSpec.amount_acts): a charge without any would never get its own."""
    priced = [spec for spec in catalogue.charges() if spec.prices_amount]
    assert len(priced) >= 20
    assert [spec.name for spec in priced if not spec.amount_acts] == []
    assert [spec.name for spec in catalogue.charges() if spec.amount_acts and not spec.prices_amount] == []
    assert all(w.strip() == w and w for spec in priced for w in spec.amount_acts)


def test_theft_tiers_are_the_statutory_ones(catalogue: ChargeCatalogue) -> None:
    theft = catalogue.resolve("盗窃")
    assert theft is not None
    assert theft.article == "264" and theft.family is Family.PROPERTY and theft.carries_fine
    assert [(t.floor, t.ceiling) for t in theft.tiers] == [("surveillance", 36), (36, 120), (120, "life")]


def test_province_thresholds_override_the_national_default(catalogue: ChargeCatalogue) -> None:
    theft = catalogue.resolve("盗窃")
    assert theft is not None
    national = catalogue.threshold(theft, "数额较大", None)
    assert 1000 <= national.value <= 3000
    assert catalogue.threshold(theft, "数额较大", "ZJ").value == 3000
    assert catalogue.threshold(theft, "数额较大", "SH").value == 1000
    assert catalogue.threshold(theft, "数额较大", "XZ").value == national.value  # no override: the default
    for code, charges in catalogue.provinces.items():
        for values in charges.values():
            for t in values.values():
                assert t.source, code


def test_drug_equivalents(catalogue: ChargeCatalogue) -> None:
    assert catalogue.meth_equivalent_grams("甲基苯丙胺", 12) == 12
    assert catalogue.meth_equivalent_grams("海洛因", 3) == 3
    assert catalogue.meth_equivalent_grams("氯胺酮", 100) == pytest.approx(10)
    assert catalogue.meth_equivalent_grams("不明物质", 1) is None


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_catalogue_names_the_charge_and_field(tmp_path: Path) -> None:
    base = DEFAULT_CHARGES_PATH.read_text(encoding="utf-8")
    tier2 = 'start = [36, 48]\nstart_source = "法发〔2021〕21号 四(十一)2'
    assert tier2 in base
    broken = base.replace(tier2, 'start = [48, 36]\nstart_source = "x', 1)
    with pytest.raises(CatalogueError, match="盗窃"):
        ChargeCatalogue.load(_write(tmp_path, "c.toml", broken))
    named = 'threshold = "数额巨大" }]\nstart = [36, 48]'
    assert named in base
    unknown_threshold = base.replace(named, named.replace("数额巨大", "数额超大"), 1)
    with pytest.raises(CatalogueError, match="数额超大"):
        ChargeCatalogue.load(_write(tmp_path, "d.toml", unknown_threshold))
    with pytest.raises(CatalogueError, match="not valid TOML"):
        ChargeCatalogue.load(_write(tmp_path, "e.toml", "version = "))
    with pytest.raises(CatalogueError, match="version"):
        ChargeCatalogue.load(_write(tmp_path, "f.toml", "x = 1"))
    with pytest.raises(CatalogueError, match="not found"):
        ChargeCatalogue.load(tmp_path / "missing.toml")


def test_bad_province_file_is_rejected(tmp_path: Path) -> None:
    bad_code = _write(tmp_path, "p.toml", '[ZZ."盗窃"]\n"数额较大" = { value = 1, source = "x" }\n')
    with pytest.raises(CatalogueError, match="ZZ"):
        ChargeCatalogue.load(DEFAULT_CHARGES_PATH, bad_code)
    bad_charge = _write(tmp_path, "q.toml", '[JS."外星人入侵"]\n"数额较大" = { value = 1, source = "x" }\n')
    with pytest.raises(CatalogueError, match="外星人入侵"):
        ChargeCatalogue.load(DEFAULT_CHARGES_PATH, bad_charge)
    bad_value = _write(tmp_path, "r.toml", '[JS."盗窃"]\n"数额较大" = { value = -5, source = "x" }\n')
    with pytest.raises(CatalogueError, match=r"JS\.盗窃\.数额较大"):
        ChargeCatalogue.load(DEFAULT_CHARGES_PATH, bad_value)


def test_derive_tiers_from_article_text() -> None:
    text = (
        "故意伤害他人身体的，处三年以下有期徒刑、拘役或者管制。犯前款罪，致人重伤的，处三年以上十年以下有期徒刑；"
        "致人死亡或者以特别残忍手段致人重伤造成严重残疾的，处十年以上有期徒刑、无期徒刑或者死刑。"
    )
    tiers = [(floor, ceiling) for _, floor, ceiling, _ in derive_tiers_from_article(text)]
    assert tiers == [("surveillance", 36), (36, 120), (120, "death")]
    open_ended = derive_tiers_from_article("挪用本单位资金数额特别巨大的，处七年以上有期徒刑。")
    assert [(f, c) for _, f, c, _ in open_ended] == [(84, 180)]


@pytest.mark.real_data
def test_catalogue_recognises_the_charges_of_the_real_data(shared_data: Path) -> None:
    """≥ 95% of defendants in ../shared/data have every charge in the catalogue."""
    from sentencing.importers import read_cases

    catalogue = default_catalogue()
    total = recognised = 0
    for fmt, rel in (("judge", "judge/judgments.jsonl"), ("lawbench", "lawbench/term_prediction.jsonl")):
        for case in read_cases(fmt, [shared_data / rel]):
            for d in case.defendants:
                if d.charges:
                    total += 1
                    recognised += all(spec is not None for _, spec in catalogue.resolve_all(d.charge_names))
    assert total > 600
    assert recognised / total >= 0.95


def test_a_catalogue_elsewhere_reads_the_provinces_beside_it(tmp_path: Path) -> None:
    from sentencing.charges import DEFAULT_PROVINCES_PATH

    charges = _write(tmp_path, "charges.toml", DEFAULT_CHARGES_PATH.read_text(encoding="utf-8"))
    loaded = ChargeCatalogue.load(charges)
    assert loaded.provinces == {}  # nothing beside it yet
    _write(tmp_path, "provinces.toml", DEFAULT_PROVINCES_PATH.read_text(encoding="utf-8"))
    theft = ChargeCatalogue.load(charges).resolve("盗窃")
    assert theft is not None
    assert ChargeCatalogue.load(charges).threshold(theft, "数额较大", "ZJ").value == 3000


def test_death_is_reachable_where_the_law_keeps_it(catalogue: ChargeCatalogue) -> None:
    """training.models.LegalLimits removes a 死刑 probability the catalogue's tiers do not reach: 受贿 of
    hundreds of millions can be sentenced to death (刑法第383条), theft no longer can (修正案八), nor
    组织卖淫 or 集资诈骗 (修正案九)."""
    from sentencing.sentence import SentenceKind

    def reaches_death(name: str) -> bool:
        spec = catalogue.resolve(name)
        assert spec is not None, name
        assert spec.reaches_death == any(t.max_kind is SentenceKind.DEATH for t in spec.tiers), name
        return spec.reaches_death

    for name in ("故意杀人", "故意伤害", "抢劫", "强奸", "贩卖毒品", "放火", "爆炸", "贪污", "受贿", "拐卖妇女、儿童",
                 "生产、销售、提供假药", "生产、销售有毒、有害食品", "破坏交通工具", "绑架", "劫持航空器"):
        assert reaches_death(name), name
    for name in ("盗窃", "诈骗", "组织卖淫", "集资诈骗", "伪造货币", "非法拘禁"):
        assert not reaches_death(name), name


def test_a_tier_may_begin_at_life_and_must_then_reach_life_or_death(catalogue: ChargeCatalogue) -> None:
    """刑法第239条第2款 (绑架 that kills the hostage): 处无期徒刑或者死刑, a tier with no fixed term."""
    from sentencing.charges import Tier
    from sentencing.sentence import SentenceKind

    (top,) = [t for t in catalogue.resolve("绑架").tiers if t.no_fixed_term]
    assert top.min_kind is SentenceKind.LIFE and top.max_kind is SentenceKind.DEATH and top.min_months is None
    assert top.floor_months == 180  # only 减轻 (刑法第63条) reaches a term, the longest fixed term at most
    assert not top.allows_detention
    with pytest.raises(ValueError, match="无期徒刑 or 死刑"):
        Tier(label="x", floor="life", ceiling=180, start=(180, 180), start_source="test")
    # 刑法第121条: a tier of 死刑 alone
    (hijack,) = [t for t in catalogue.resolve("劫持航空器").tiers if t.no_fixed_term]
    assert hijack.min_kind is SentenceKind.DEATH and hijack.max_kind is SentenceKind.DEATH
    with pytest.raises(ValueError, match="must reach 死刑"):
        Tier(label="x", floor="death", ceiling="life", start=(180, 180), start_source="test")
