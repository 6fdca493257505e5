"""The charge catalogue (罪名): statutory tiers, thresholds and starting points, read from data.

Every number of the guideline method lives in ``sentencing/data/charges.toml`` with its source
(法发〔2021〕21号 clause, Criminal Law article, judicial interpretation, or ``derived: …``);
provincial variations (实施细则) live in ``sentencing/data/provinces.toml``. This module only
loads, validates and looks them up: the arithmetic is in :mod:`sentencing.guideline`.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentencing.case import AggravationCode, CircumstanceCode, InjuryGrade, Role
from sentencing.sentence import SentenceKind

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CHARGES_PATH = DATA_DIR / "charges.toml"
DEFAULT_PROVINCES_PATH = DATA_DIR / "provinces.toml"

FIXED_TERM_MAX = 180  # 有期徒刑 of one crime: at most 15 years (art. 45)


class Family(StrEnum):
    PROPERTY = "property"
    VIOLENCE = "violence"
    DRUGS = "drugs"
    TRAFFIC = "traffic"
    FRAUD = "fraud"
    PUBLIC_ORDER = "public_order"
    ECONOMIC = "economic"
    DUTY = "duty"  # 职务犯罪
    SEXUAL = "sexual"
    OTHER = "other"


class FinePolicy(StrEnum):
    NONE = "none"
    OPTIONAL = "optional"  # 可以并处罚金
    MANDATORY = "mandatory"  # 并处罚金
    OR_ONLY = "or_only"  # 并处或者单处罚金


class CatalogueError(ValueError):
    """The catalogue or province file is malformed; the message names the entry and field."""


Quantity = Literal["amount_yuan", "drug_grams", "injury", "deaths", "occurrences", "blood_alcohol"]


class Condition(BaseModel):
    """One way a tier is reached: a quantity at or above a value (or a named threshold)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity: Quantity | None = None
    threshold: str | None = None
    """Name of a threshold of the charge (``数额较大``), resolved per province."""
    value: float | None = None
    grade: InjuryGrade | None = None
    aggravation: AggravationCode | None = None
    """A fact the article names as selecting the tier (入户抢劫); with a quantity as well, both must hold
    (交通肇事 肇事后逃逸 aggravates only a crime its other facts make: a death, 法释〔2000〕33号 第三条)."""

    @model_validator(mode="after")
    def _one_bound(self) -> Condition:
        if self.quantity is None and self.aggravation is None:
            raise ValueError("a condition needs a 'quantity', an 'aggravation', or both")
        if self.quantity is None:
            if self.threshold is not None or self.value is not None or self.grade is not None:
                raise ValueError("an aggravation condition without a quantity takes no threshold, value or grade")
            return self
        if self.quantity == "injury":
            if self.grade is None:
                raise ValueError("an injury condition needs 'grade'")
        elif (self.threshold is None) == (self.value is None):
            raise ValueError(f"a {self.quantity} condition needs exactly one of 'threshold' or 'value'")
        return self


class Increment(BaseModel):
    """增加刑罚量: months added to the starting point per unit of a quantity beyond the basic facts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity: Quantity | Literal["injured_people"]
    per: float = Field(gt=0, description="unit size: yuan, grams (heroin/meth-equivalent), mg/100ml, occurrences")
    months: float = Field(gt=0)
    above: float | None = None
    """Count from this value; ``None`` means from the tier's own threshold."""
    above_threshold: str | None = None
    max_months: float | None = None
    source: str


class Tier(BaseModel):
    """A statutory tier (法定刑幅度) with its selecting conditions and its starting point (量刑起点)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    floor: int | Literal["surveillance", "detention", "fine_only", "life", "death"]
    """Lightest penalty: months of 有期徒刑, or the lightest kind allowed (管制/拘役/单处罚金), or 无期徒刑
    for a tier of 无期徒刑或者死刑 (绑架 that kills the hostage, 刑法第239条第2款), or 死刑 for a tier of
    死刑 alone (劫持航空器 致人重伤、死亡, 第121条)."""
    ceiling: int | Literal["detention", "life", "death"]
    """Heaviest penalty: months of 有期徒刑, 拘役 (6 months), 无期徒刑 or 死刑."""
    fine: FinePolicy = FinePolicy.NONE
    when: list[Condition] = Field(default_factory=list)
    """Any one of these selects the tier; empty for the basic tier and for tiers the facts cannot select."""
    start: tuple[float, float]
    """量刑起点 range in months."""
    start_point: float | None = None
    """The starting point of the point estimate (before 增加刑罚量); None: ``method.start_position``."""
    start_source: str
    increments: list[Increment] = Field(default_factory=list)
    derived: bool = False
    """Starting point derived from the statutory tier, not from a guideline text."""

    @model_validator(mode="after")
    def _sane(self) -> Tier:
        lo, hi = self.start
        if not 0 < lo <= hi:
            raise ValueError(f"start range {self.start} is not 0 < low <= high")
        if self.start_point is not None and not lo <= self.start_point <= hi:
            raise ValueError(f"start_point {self.start_point} outside start range {self.start}")
        if isinstance(self.floor, int) and isinstance(self.ceiling, int) and self.floor > self.ceiling:
            raise ValueError("floor above ceiling")
        if self.floor == "life" and self.ceiling not in ("life", "death"):
            raise ValueError(f"a tier whose floor is 无期徒刑 must reach 无期徒刑 or 死刑, not {self.ceiling!r}")
        if self.floor == "death" and self.ceiling != "death":
            raise ValueError(f"a tier whose floor is 死刑 must reach 死刑, not {self.ceiling!r}")
        return self

    # -- statutory bounds on the months scale

    @property
    def floor_months(self) -> float:
        """The lowest term the tier allows on the months scale (拘役 1 month, 管制 counted as 1; a
        floor of 无期徒刑 or 死刑 as the longest fixed term, which only 减轻 reaches)."""
        if self.no_fixed_term:
            return float(FIXED_TERM_MAX)
        return float(self.floor) if isinstance(self.floor, int) else 1.0

    @property
    def ceiling_months(self) -> float:
        """The highest fixed term: 6 for 拘役-only tiers, 180 for tiers that reach 无期/死刑."""
        if self.ceiling == "detention":
            return 6.0
        if isinstance(self.ceiling, int):
            return float(self.ceiling)
        return float(FIXED_TERM_MAX)

    @property
    def min_kind(self) -> SentenceKind:
        return {
            "surveillance": SentenceKind.SURVEILLANCE,
            "detention": SentenceKind.DETENTION,
            "fine_only": SentenceKind.FINE_ONLY,
            "life": SentenceKind.LIFE,
            "death": SentenceKind.DEATH,
        }.get(self.floor, SentenceKind.FIXED_TERM)  # type: ignore[call-overload]

    @property
    def min_months(self) -> int | None:
        return {"surveillance": 3, "detention": 1, "fine_only": None, "life": None, "death": None}.get(  # type: ignore[call-overload]
            self.floor, self.floor)

    @property
    def no_fixed_term(self) -> bool:
        """无期徒刑或者死刑, or 死刑 alone: no fixed term unless a ground of 减轻 (刑法第63条) applies."""
        return self.floor in ("life", "death")

    @property
    def max_kind(self) -> SentenceKind:
        return {
            "detention": SentenceKind.DETENTION,
            "life": SentenceKind.LIFE,
            "death": SentenceKind.DEATH,
        }.get(self.ceiling, SentenceKind.FIXED_TERM)  # type: ignore[call-overload]

    @property
    def max_months(self) -> int | None:
        if self.ceiling == "detention":
            return 6
        return self.ceiling if isinstance(self.ceiling, int) else None

    @property
    def allows_detention(self) -> bool:
        return self.floor in ("surveillance", "detention", "fine_only")


class Threshold(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float = Field(gt=0)
    source: str


class FineRule(BaseModel):
    """How the catalogue estimates a fine (罚金) in yuan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount_ratio: float | None = None
    """Share of the crime amount (e.g. theft: 1–2× the amount, 法释〔2013〕8号 第十四条)."""
    per_month_yuan: float = 1000.0
    min_yuan: float = 1000.0
    max_yuan: float | None = None
    source: str


class ChargeSpec(BaseModel):
    """One charge of the catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Canonical name without the trailing 罪 (``盗窃``)."""
    article: str
    """Criminal Law article (``264``, ``133-1`` for 第一百三十三条之一)."""
    family: Family
    aliases: list[str] = Field(default_factory=list)
    tiers: list[Tier]
    carries_fine: bool = False
    fine: FineRule | None = None
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    guideline: str | None = None
    """The guideline clause that prices this charge (``法发〔2021〕21号 四(十一)``); None when derived."""
    statutory_source: str
    key_quantities: list[Quantity] = Field(default_factory=list)
    """Quantities without which the tier is unknown (a warning when all are missing); default: those
    the default tier's own conditions name. Absent aggravating facts are not missing facts."""
    default_tier: int = Field(default=0, ge=0)
    """The tier used when no condition selects a heavier one: the article's first-stated tier."""
    probation: Literal["normal", "restricted"] = "normal"
    """``restricted``: the courts' policy is to limit 缓刑 (drug trafficking, 毒品再犯…)."""
    intentional: bool = True
    derived: bool = False
    notes: str | None = None
    amount_acts: list[str] = Field(default_factory=list)
    """Words a judgment tells this charge's amount with (受贿: 收受, 索取): of a defendant's several charges
    that an amount prices (数罪), an amount told with one of them is this charge's (sentencing.parsing)."""

    @model_validator(mode="after")
    def _thresholds_named(self) -> ChargeSpec:
        if not self.tiers:
            raise ValueError("a charge needs at least one tier")
        if self.default_tier >= len(self.tiers):
            raise ValueError(f"default_tier {self.default_tier} but only {len(self.tiers)} tiers")
        labels = [t.label for t in self.tiers]
        if len(set(labels)) != len(labels):
            # The label names the tier wherever one is shown or grouped on (the cohort of similar cases).
            raise ValueError(f"two tiers share a label: {labels}")
        for tier in self.tiers:
            names = [c.threshold for c in tier.when] + [i.above_threshold for i in tier.increments]
            for name in names:
                if name is not None and name not in self.thresholds:
                    raise ValueError(f"tier {tier.label!r} names unknown threshold {name!r}")
        return self

    @property
    def label(self) -> str:
        return self.name + "罪"

    @property
    def prices_amount(self) -> bool:
        """Whether an amount (犯罪数额) selects a tier of the charge or adds to its term."""
        return any(c.quantity == "amount_yuan" for t in self.tiers for c in t.when) or any(
            i.quantity == "amount_yuan" for t in self.tiers for i in t.increments)

    @property
    def reaches_death(self) -> bool:
        """Whether any tier of the charge allows 死刑."""
        return any(t.max_kind is SentenceKind.DEATH for t in self.tiers)


class CircumstanceRule(BaseModel):
    """The price of one sentencing circumstance (量刑情节), DOMAIN.md §2."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Literal["first_tier", "second_tier"]
    ratio: float
    """Typical share of the (adjusted) baseline: −0.2 = reduce by 20%."""
    range: tuple[float, float]
    """The clause's span, lightest…heaviest reduction or increase."""
    basis: str
    mitigation: bool = False
    """法定减轻: allows going below the tier floor (Criminal Law art. 63)."""
    min_months: float | None = None
    """At least this many months (累犯: at least +3 months)."""


class Method(BaseModel):
    """Global parameters of the method, each with its source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_position: float = Field(ge=0, le=1)
    start_position_source: str
    discretion_band: float = Field(ge=0, lt=1)
    discretion_source: str
    warning_widening: float = Field(ge=0)
    max_band: float = Field(gt=0, lt=1)
    derived_band: float = Field(ge=0, lt=1)
    combine_share: float = Field(ge=0, le=1)
    combine_source: str
    life_margin_months: float = Field(gt=0)
    life_source: str
    plea_alone: float
    plea_premium: float
    plea_cap_alone: float
    plea_cap_with: float
    plea_source: str
    probation_max_months: int
    probation_source: str
    juvenile_under16_ratio: float
    juvenile_under16_range: tuple[float, float]
    juvenile_source: str
    compensation_with_forgiveness: float
    compensation_with_forgiveness_range: tuple[float, float]
    compensation_source: str


class ChargeCatalogue:
    """The versioned rule set: charges, circumstance prices and provincial thresholds."""

    def __init__(
        self,
        version: str,
        charges: list[ChargeSpec],
        circumstances: dict[CircumstanceCode, CircumstanceRule],
        drug_equivalents: dict[str, float],
        drug_source: str,
        method: Method,
        roles: dict[Role, CircumstanceRule] | None = None,
        fallback: Tier | None = None,
        provinces: dict[str, dict[str, dict[str, Threshold]]] | None = None,
    ) -> None:
        self.version = version
        self.roles = roles or {}
        self.fallback = fallback
        self._charges = charges
        self.circumstances = circumstances
        self.drug_equivalents = drug_equivalents
        self.drug_source = drug_source
        self.method = method
        self.provinces = provinces or {}
        self._by_key: dict[str, ChargeSpec] = {}
        for spec in charges:
            for alias in (spec.name, *spec.aliases):
                key = _key(alias)
                other = self._by_key.get(key)
                if other is not None and other.name != spec.name:
                    raise CatalogueError(f"alias {alias!r} names both {other.name!r} and {spec.name!r}")
                self._by_key[key] = spec
        for code in CircumstanceCode:
            if code not in circumstances:
                raise CatalogueError(f"circumstances: no rule for {code.value!r}")

    @classmethod
    def load(cls, path: Path | None = None, provinces_path: Path | None = None) -> ChargeCatalogue:
        """Read and validate a catalogue (default: the bundled one) and its provincial overrides.

        Without ``provinces_path``, a ``provinces.toml`` beside the catalogue is read if present.
        """
        path = path or DEFAULT_CHARGES_PATH
        if provinces_path is None and (path.parent / DEFAULT_PROVINCES_PATH.name).is_file():
            provinces_path = path.parent / DEFAULT_PROVINCES_PATH.name
        raw = _read_toml(path)
        version = raw.get("version")
        if not isinstance(version, str) or not version:
            raise CatalogueError(f"{path}: 'version' must be a non-empty string")
        charges: list[ChargeSpec] = []
        for i, entry in enumerate(raw.get("charge", [])):
            try:
                charges.append(ChargeSpec.model_validate(entry))
            except ValidationError as e:
                name = entry.get("name", f"#{i}") if isinstance(entry, dict) else f"#{i}"
                raise CatalogueError(f"{path}: charge {name!r}: {_first_error(e)}") from None
        circumstances: dict[CircumstanceCode, CircumstanceRule] = {}
        for code, entry in raw.get("circumstances", {}).items():
            try:
                circumstances[CircumstanceCode(code)] = CircumstanceRule.model_validate(entry)
            except ValueError as e:
                raise CatalogueError(f"{path}: circumstances.{code}: {e}") from None
        roles: dict[Role, CircumstanceRule] = {}
        for role, entry in raw.get("roles", {}).items():
            try:
                roles[Role(role)] = CircumstanceRule.model_validate(entry)
            except ValueError as e:
                raise CatalogueError(f"{path}: roles.{role}: {e}") from None
        try:
            method = Method.model_validate(raw.get("method", {}))
        except ValidationError as e:
            raise CatalogueError(f"{path}: method: {_first_error(e)}") from None
        drugs = raw.get("drugs", {})
        try:
            fallback = Tier.model_validate(raw["fallback"]) if "fallback" in raw else None
        except ValidationError as e:
            raise CatalogueError(f"{path}: fallback: {_first_error(e)}") from None
        provinces = _load_provinces(provinces_path, charges) if provinces_path else {}
        return cls(
            version=version,
            charges=charges,
            circumstances=circumstances,
            drug_equivalents={k: float(v) for k, v in drugs.get("meth_equivalent", {}).items()},
            drug_source=str(drugs.get("source", "")),
            method=method,
            roles=roles,
            fallback=fallback,
            provinces=provinces,
        )

    def resolve(self, name: str) -> ChargeSpec | None:
        """The charge for a name or alias (``盗窃``, ``盗窃罪``, ``贩卖毒品``), or None if unknown."""
        key = _key(name)
        if not key:
            return None
        if spec := self._by_key.get(key):
            return spec
        # Several charges named together (``盗窃、抢夺``) are resolved one by one by the caller.
        return None

    def resolve_all(self, names: list[str]) -> list[tuple[str, ChargeSpec | None]]:
        """Resolve a defendant's charge list, re-joining names that were split at ``、``.

        Charge names themselves contain ``、`` (``走私、贩卖、运输、制造毒品``); a list split at every
        ``、`` (``走私``, ``贩卖``, …) is re-joined greedily, longest known run first. Names that
        stay unknown are returned with ``None``.
        """
        out: list[tuple[str, ChargeSpec | None]] = []
        i = 0
        while i < len(names):
            for j in range(len(names), i, -1):
                joined = "、".join(n.strip().removesuffix("罪") for n in names[i:j])
                spec = self.resolve(joined)
                if spec is not None:
                    out.append((joined, spec))
                    i = j
                    break
            else:
                out.append((names[i], None))
                i += 1
        return out

    def charges(self) -> list[ChargeSpec]:
        return list(self._charges)

    def threshold(self, spec: ChargeSpec, name: str, province: str | None) -> Threshold:
        """A named threshold of a charge, the province's own value when it sets one."""
        if province and (own := self.provinces.get(province, {}).get(spec.name, {}).get(name)):
            return own
        return spec.thresholds[name]

    def meth_equivalent_grams(self, drug: str, grams: float) -> float | None:
        """Grams of a drug as heroin/methamphetamine-equivalent grams (法释〔2016〕8号 ratios)."""
        for name, factor in self.drug_equivalents.items():
            if name == drug or drug.startswith(name) or name in drug:
                return grams * factor
        return None


@lru_cache(maxsize=4096)
def _key(name: str) -> str:
    """The lookup key of a charge name: no whitespace, trailing punctuation or 罪 (memoised: pure)."""
    key = re.sub(r"\s+", "", name).strip("。；;，,")
    if key.endswith("罪") and len(key) > 1:
        key = key[:-1]
    return key


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"catalogue file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(f"{path}: not valid TOML: {e}") from None


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def _load_provinces(path: Path, charges: list[ChargeSpec]) -> dict[str, dict[str, dict[str, Threshold]]]:
    from sentencing.regions import BY_CODE

    known = {c.name: c for c in charges}
    out: dict[str, dict[str, dict[str, Threshold]]] = {}
    for code, per_charge in _read_toml(path).items():
        if code == "version":
            continue
        if code not in BY_CODE:
            raise CatalogueError(f"{path}: unknown province code {code!r}")
        for charge, values in per_charge.items():
            spec = known.get(charge)
            if spec is None:
                raise CatalogueError(f"{path}: {code}.{charge}: not a charge of the catalogue")
            for name, entry in values.items():
                if name not in spec.thresholds:
                    raise CatalogueError(f"{path}: {code}.{charge}.{name}: the charge has no such threshold")
                try:
                    out.setdefault(code, {}).setdefault(charge, {})[name] = Threshold.model_validate(entry)
                except ValidationError as e:
                    raise CatalogueError(f"{path}: {code}.{charge}.{name}: {_first_error(e)}") from None
    return out


@lru_cache(maxsize=1)
def default_catalogue() -> ChargeCatalogue:
    """The bundled catalogue, loaded once per process."""
    return ChargeCatalogue.load()


@lru_cache(maxsize=8)
def load_catalogue(path: Path | None = None, provinces_path: Path | None = None) -> ChargeCatalogue:
    """A catalogue by path (``Settings.ruleset``), loaded once per process; None: the bundled one."""
    if path is None and provinces_path is None:
        return default_catalogue()
    return ChargeCatalogue.load(path, provinces_path)


# --------------------------------------------------------------------------- deriving tiers

_CN_NUM = "一二三四五六七八九十两"
_RE_PENALTY = re.compile(r"处(?P<body>[^；;。]*?(?:有期徒刑|拘役|管制|罚金|无期徒刑|死刑)[^；;。]*)")


def derive_tiers_from_article(text: str) -> list[tuple[str, str | int, str | int, FinePolicy]]:
    """The statutory tiers an article states, in its own order: (clause, floor, ceiling, fine).

    Used to derive catalogue entries for charges the guideline does not price (the catalogue
    stores the result as data; nothing reads article text at run time).
    """
    from sentencing.numerals import parse_int

    tiers: list[tuple[str, str | int, str | int, FinePolicy]] = []
    first_paragraph_only = re.split(r"单位犯", text)[0]
    for m in _RE_PENALTY.finditer(first_paragraph_only):
        body = m.group("body")
        clause_start = max(
            first_paragraph_only.rfind("；", 0, m.start()), first_paragraph_only.rfind("。", 0, m.start())
        )
        clause = first_paragraph_only[clause_start + 1 : m.start()].strip("，,")
        years = [parse_int(y) for y in re.findall(rf"([{_CN_NUM}]+)年(?:以上|以下|有期)", body)]
        floor: str | int
        ceiling: str | int
        if "死刑" in body:
            ceiling = "death"
        elif "无期徒刑" in body:
            ceiling = "life"
        elif "以下有期徒刑" in body:
            ceiling = max(years) * 12 if years else 36
        elif "以上有期徒刑" in body:
            ceiling = FIXED_TERM_MAX
        elif "有期徒刑" in body and years:
            ceiling = max(years) * 12
        elif "拘役" in body:
            ceiling = "detention"
        else:
            ceiling = "detention" if "拘役" in body else 0
        if "管制" in body:
            floor = "surveillance"
        elif "拘役" in body:
            floor = "detention"
        elif re.search(rf"[{_CN_NUM}]+年以上", body):
            floor = parse_int(re.search(rf"([{_CN_NUM}]+)年以上", body).group(1)) * 12  # type: ignore[union-attr]
        elif re.search(rf"[{_CN_NUM}]+年有期徒刑", body):
            floor = parse_int(re.search(rf"([{_CN_NUM}]+)年有期徒刑", body).group(1)) * 12  # type: ignore[union-attr]
        elif "以下有期徒刑" in body:
            floor = 6
        elif "罚金" in body:
            floor = "fine_only"
        else:
            continue
        if ceiling == 0:
            continue
        if "单处罚金" in body or ("罚金" in body and "或者罚金" in body) or "或者单处" in body:
            fine = FinePolicy.OR_ONLY
        elif "并处罚金" in body or "并处没收" in body or "并处罚金或者没收财产" in body:
            fine = FinePolicy.MANDATORY
        elif "罚金" in body:
            fine = FinePolicy.OPTIONAL
        else:
            fine = FinePolicy.NONE
        if isinstance(floor, int) and isinstance(ceiling, int) and floor >= ceiling:
            # ``处十年有期徒刑`` style fixed points; keep as a one-point tier.
            ceiling = floor
        tiers.append((clause, floor, ceiling, fine))
    return tiers
