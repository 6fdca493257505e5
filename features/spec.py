"""The feature specification: which numbers describe one defendant of one case, in which order.

A model is only valid with the exact spec it was trained with, so the spec is versioned, saved
beside the model and checked on load. The categorical vocabularies (charges, charge families,
provinces) are part of the spec: they come from the training data and the charge catalogue, and
a value outside them is encoded as "other", never silently mapped to a known one.

Missing values are ``NaN`` (LightGBM routes them explicitly), never zero: "no amount in the
facts" is not "an amount of 0 yuan".
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sentencing.case import CIRCUMSTANCE_LABELS, CircumstanceCode
from sentencing.charges import ChargeCatalogue, Family
from sentencing.regions import PROVINCES
from sentencing.sentence import SentenceForm

FEATURE_SPEC_VERSION = "2"
# 2: a guideline result of 无期徒刑 fills the guideline term columns with the heaviest fixed term
#    (features.extract.LIFE_AS_MONTHS), no longer NaN, the value of "no guideline at all"

# Drugs with their own weight feature; every other drug is summed into "other" (其他毒品).
DRUGS: tuple[str, ...] = ("海洛因", "甲基苯丙胺", "氯胺酮", "大麻", "可卡因", "其他")

# Circumstances whose direction the law fixes (DOMAIN.md §2): +1 never lowers the sentence,
# -1 never raises it. Used as LightGBM monotone constraints on the term models.
CIRCUMSTANCE_DIRECTION: dict[CircumstanceCode, int] = {
    CircumstanceCode.SURRENDER: -1,
    CircumstanceCode.CONFESSION: -1,
    CircumstanceCode.COURT_PLEA: -1,
    CircumstanceCode.PLEA_AGREEMENT: -1,
    CircumstanceCode.MERITORIOUS: -1,
    CircumstanceCode.MAJOR_MERITORIOUS: -1,
    CircumstanceCode.RECIDIVIST: 1,
    CircumstanceCode.PRIOR_RECORD: 1,
    CircumstanceCode.RESTITUTION: -1,
    CircumstanceCode.COMPENSATION: -1,
    CircumstanceCode.FORGIVENESS: -1,
    CircumstanceCode.RECONCILIATION: -1,
    CircumstanceCode.ATTEMPT: -1,
    CircumstanceCode.DISCONTINUATION: -1,
    CircumstanceCode.PREPARATION: -1,
    CircumstanceCode.JUVENILE: -1,
    CircumstanceCode.ELDERLY: -1,
    CircumstanceCode.VULNERABLE_VICTIM: 1,
    CircumstanceCode.DISASTER_TIME: 1,
    CircumstanceCode.DISABILITY: -1,
}

# Explanation groups: feature-name prefix → (group, Chinese label). Every feature belongs to one.
GROUP_LABELS: dict[str, str] = {
    "guideline": "量刑指导意见测算",
    "statutory": "法定刑幅度",
    "amount": "犯罪数额",
    "drugs": "毒品数量",
    "injury": "伤害后果",
    "occurrences": "作案次数",
    "deaths": "死亡人数",
    "alcohol": "血液酒精含量",
    "role": "共同犯罪地位",
    "codefendants": "同案被告人",
    "age": "年龄",
    "region": "地区",
    "court": "法院层级",
    "charge": "罪名",
    "charges_count": "罪名个数",
    "text": "案情文本",
    **{f"circ_{code.value}": CIRCUMSTANCE_LABELS[code] for code in CircumstanceCode},
}

ROLE_RANK = {"coerced": 0.0, "accessory": 1.0, "sole": 2.0, "instigator": 2.0, "principal": 2.0}
"""Culpability rank of a role in a joint crime (胁从犯 < 从犯 < 主犯): higher never lowers the term."""


class FeatureSpec(BaseModel):
    """The ordered feature names with their group, monotone direction and vocabularies."""

    model_config = ConfigDict(frozen=True)

    version: str = FEATURE_SPEC_VERSION
    charges: list[str] = Field(description="charge one-hot vocabulary (canonical names, without 罪)")
    families: list[str] = Field(description="charge-family one-hot vocabulary")
    provinces: list[str] = Field(default_factory=lambda: [p.code for p in PROVINCES])
    ruleset_version: str = Field(description="ChargeCatalogue.version the guideline features were computed with")
    names: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    monotone: list[int] = Field(default_factory=list)

    def model_post_init(self, _context: object) -> None:
        if not self.names:
            names, groups, monotone = _layout(self.charges, self.families, self.provinces)
            object.__setattr__(self, "names", names)
            object.__setattr__(self, "groups", groups)
            object.__setattr__(self, "monotone", monotone)

    @property
    def n_features(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    @cached_property
    def family_columns(self) -> tuple[list[str], list[int]]:
        """The charge families (with 其他) and the indices of their one-hot columns."""
        labels = [*self.families, "其他"]
        return labels, [self.names.index(f"charge_family_{f}") for f in labels]

    def row_families(self, X: np.ndarray) -> list[str | None]:
        """Each row's charge family, from its one-hot columns; None for a row with none or several
        (a defendant convicted of crimes of two families belongs to neither)."""
        return self.families_of(np.asarray(X)[:, self.family_columns[1]])

    def families_of(self, flags: np.ndarray) -> list[str | None]:
        """:meth:`row_families` from the family columns alone ((n, families + 1), in their order)."""
        labels = self.family_columns[0]
        out: list[str | None] = []
        for row in np.asarray(flags).tolist():
            hits = [labels[j] for j, v in enumerate(row) if v == 1.0]
            out.append(hits[0] if len(hits) == 1 else None)
        return out

    def check_compatible(self) -> None:
        """Raise ValueError when this (saved) spec is not what this code would lay out."""
        if self.version != FEATURE_SPEC_VERSION:
            raise ValueError(f"feature spec version {self.version!r}, this code reads {FEATURE_SPEC_VERSION!r}")
        names, _, _ = _layout(self.charges, self.families, self.provinces)
        if names != self.names:
            raise ValueError("feature spec names differ from this code's layout of the same vocabularies")


def _layout(charges: list[str], families: list[str], provinces: list[str]) -> tuple[list[str], list[str], list[int]]:
    rows: list[tuple[str, str, int]] = []

    def add(name: str, group: str, direction: int = 0) -> None:
        rows.append((name, group, direction))

    # Guideline engine outputs (log1p months); a heavier guideline result never lowers the term.
    add("guideline_known", "guideline")
    for name in ("guideline_low", "guideline_point", "guideline_high", "guideline_starting_point",
                 "guideline_baseline", "guideline_adjusted"):
        add(name, "guideline", 1)
    add("guideline_width", "guideline")
    for form in SentenceForm:
        add(f"guideline_form_{form.value}", "guideline")
    add("guideline_probation_eligible", "guideline")
    add("guideline_warnings", "guideline")
    add("statutory_min", "statutory", 1)
    add("statutory_max", "statutory", 1)
    add("statutory_max_life_or_death", "statutory", 1)
    # Quantities.
    add("amount_known", "amount")
    add("amount_log_yuan", "amount", 1)
    add("drugs_known", "drugs")
    for drug in DRUGS:
        add(f"drugs_log_grams_{drug}", "drugs", 1)
    add("drugs_log_meth_equivalent", "drugs", 1)
    add("injury_known", "injury")
    add("injury_max_rank", "injury", 1)
    add("injury_count", "injury", 1)
    add("occurrences", "occurrences", 1)
    add("deaths", "deaths", 1)
    add("alcohol_mg_per_100ml", "alcohol", 1)
    # Circumstances (量刑情节).
    for code in CircumstanceCode:
        add(f"circ_{code.value}", f"circ_{code.value}", CIRCUMSTANCE_DIRECTION.get(code, 0))
    add("circ_count_mitigating", "circ_count", -1)
    add("circ_count_aggravating", "circ_count", 1)
    # Joint crime (共同犯罪).
    add("role_rank", "role", 1)
    for role in ("principal", "accessory", "coerced", "instigator"):
        add(f"role_{role}", "role")
    add("role_position", "role")
    add("codefendants_count", "codefendants")
    add("codefendants_amount_share", "amount", 1)
    add("codefendants_principal_same_circumstances", "codefendants")
    add("age", "age")
    add("age_known", "age")
    add("charges_count", "charges_count", 1)
    # Categoricals as one-hot; "other" for values outside the vocabulary.
    for c in [*charges, "其他"]:
        add(f"charge_{c}", "charge")
    for f in [*families, "其他"]:
        add(f"charge_family_{f}", "charge")
    for p in provinces:
        add(f"region_{p}", "region")
    add("region_known", "region")
    for level in ("basic", "intermediate", "high"):
        add(f"court_{level}", "court")
    # TF-IDF estimate from the case text (features.text); NaN unless the model was trained with text.
    add("text_estimate", "text")
    names = [r[0] for r in rows]
    if len(set(names)) != len(names):
        raise ValueError("duplicate feature names in the vocabularies")
    # circ_count features explain as "circumstances": put them in the label table lazily.
    return names, [r[1] for r in rows], [r[2] for r in rows]


GROUP_LABELS["circ_count"] = "量刑情节数量"


def build_spec(catalogue: ChargeCatalogue) -> FeatureSpec:
    """The spec for a rule set: every catalogue charge and family gets its own column."""
    return FeatureSpec(
        charges=[c.name for c in catalogue.charges()],
        families=[f.value for f in Family],
        ruleset_version=catalogue.version,
    )


def group_label(group: str) -> str:
    return GROUP_LABELS.get(group, group)
