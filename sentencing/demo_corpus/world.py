"""The synthetic world the demo corpus is drawn from: courts, provinces and charge stagings.

All of it is data (``sentencing/data/demo_provinces.toml`` and ``demo_charges.toml``), labelled
synthetic there; this module only reads it into frozen records, once per process.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from sentencing.case import InjuryGrade
from sentencing.regions import BY_CODE, MAINLAND_PROVINCES, Province

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
PROVINCES_PATH = DATA_DIR / "demo_provinces.toml"
CHARGES_PATH = DATA_DIR / "demo_charges.toml"

QUANTITY_KINDS = ("amount", "drugs", "injury", "alcohol", "traffic", "none")


class DemoDataError(ValueError):
    """A demo data file is malformed; the message names the file, entry and field."""


@dataclass(frozen=True)
class Court:
    """A basic court (基层人民法院) or an intermediate court (中级人民法院) of the demo world."""

    name: str
    """``江苏省新沂市人民法院``."""
    code: str
    """Case-number court code after the abbreviation: ``0381`` (basic) or ``03`` (intermediate)."""
    city: str
    """The prefecture-level city (``徐州市``), or the municipality itself (``北京市``)."""
    county: str
    """The county-level unit (``新沂市``, ``鼓楼区``, ``丰县``); empty for an intermediate court."""
    appeal_court: str
    """The court an appeal goes to (the intermediate or the high court)."""
    province: Province
    branch: str = ""
    """A municipality's intermediate court number (``第一``), naming its procuratorate branch."""

    @property
    def intermediate(self) -> bool:
        return not self.county

    @cached_property
    def place(self) -> str:
        """The locality in the names of the procuratorate: ``新沂市``, ``南京市鼓楼区``, ``北京市海淀区``."""
        if not self.county:
            return self.city
        if self.county.endswith("区") or self.city == self.province.full_name:
            return self.city + self.county
        return self.county

    @cached_property
    def procuratorate(self) -> str:
        if self.branch:
            return f"{self.city}人民检察院{self.branch}分院"
        if self.city == self.province.full_name:
            return self.place + "人民检察院"
        return self.province.full_name + self.place + "人民检察院"

    @cached_property
    def police(self) -> str:
        """公安局 or its district 分局, as the custody records name it."""
        if self.county.endswith("区"):
            return f"{self.city}公安局{self.county[:-1]}分局"
        return (self.county or self.city) + "公安局"

    @cached_property
    def jail(self) -> str:
        return (self.county if self.county and not self.county.endswith("区") else self.city) + "看守所"


@dataclass(frozen=True, slots=True)
class ProvinceProfile:
    """A province's synthetic sentencing tendencies and its courts."""

    province: Province
    leniency: float
    probation: float
    amount: float
    basic_courts: tuple[Court, ...]
    intermediate_courts: tuple[Court, ...]


@dataclass(frozen=True, slots=True)
class ChargeProfile:
    """How one charge is staged: its quantities, its vocabulary and its text templates."""

    name: str
    article: int
    article_cn: str
    weight: float
    quantity: str
    tiers: tuple[tuple[float, float, float, str], ...]
    injuries: tuple[tuple[float, InjuryGrade], ...]
    drugs: tuple[tuple[float, str], ...]
    grams: tuple[tuple[float, float, float], ...]
    deaths: tuple[tuple[float, int], ...]
    alcohol: tuple[float, float] | None
    occurrences: tuple[float, int, int] | None
    joint: float
    attempt: float
    compensable: str
    items: tuple[str, ...]
    weapons: tuple[str, ...]
    methods: tuple[str, ...]
    facts: tuple[str, ...]
    counted_facts: tuple[str, ...]
    """The fact templates that state the number of occurrences ({times}) over a period."""
    single_facts: tuple[str, ...]
    """The fact templates of a single event (one date, no period)."""
    attempt_facts: tuple[str, ...]
    death_facts: tuple[str, ...]
    finding: str
    charged: str


@dataclass(frozen=True, slots=True)
class World:
    provinces: tuple[ProvinceProfile, ...]
    charges: tuple[ChargeProfile, ...]
    combinations: dict[str, tuple[tuple[str, float], ...]]
    """First charge → the second charges a defendant may also be convicted of, with probabilities."""

    def charge(self, name: str) -> ChargeProfile:
        for c in self.charges:
            if c.name == name:
                return c
        raise KeyError(name)


def _court_name(province: Province, city: str, county: str) -> str:
    """The court's name in the way courts style themselves."""
    if city == province.full_name:  # a municipality: 北京市朝阳区人民法院
        return city + county + "人民法院"
    if county.endswith("区"):
        return province.full_name + city + county + "人民法院"
    return province.full_name + county + "人民法院"


def _load_provinces(path: Path) -> tuple[ProvinceProfile, ...]:
    raw = _read(path)
    out: list[ProvinceProfile] = []
    for code, entry in raw.items():
        if code not in BY_CODE:
            raise DemoDataError(f"{path}: unknown province code {code!r}")
        province = BY_CODE[code]
        where = f"{path}: {code}"
        basic: list[Court] = []
        intermediate: list[Court] = []
        for city in _field(entry, "cities", list, where):
            city_name = _field(city, "name", str, where)
            city_code = _field(city, "code", str, where)
            high = province.full_name + "高级人民法院"
            if city_name.endswith("中级人民法院"):  # a municipality names its intermediate courts
                branch = city_name.removeprefix(province.full_name).removesuffix("中级人民法院")
                inter = Court(city_name, city_code, province.full_name, "", high, province, branch)
                city_name = province.full_name
            else:
                inter_name = province.full_name + city_name + "中级人民法院"
                inter = Court(inter_name, city_code, city_name, "", high, province)
            intermediate.append(inter)
            for county, county_code in _field(city, "counties", list, where):
                name = _court_name(province, city_name, county)
                basic.append(Court(name, city_code + county_code, city_name, county, inter.name, province))
        if not basic:
            raise DemoDataError(f"{where}: no courts")
        out.append(
            ProvinceProfile(
                province=province,
                leniency=float(_field(entry, "leniency", (int, float), where)),
                probation=float(_field(entry, "probation", (int, float), where)),
                amount=float(_field(entry, "amount", (int, float), where)),
                basic_courts=tuple(basic),
                intermediate_courts=tuple(intermediate),
            )
        )
    missing = {p.code for p in MAINLAND_PROVINCES} - {p.province.code for p in out}
    if missing:
        raise DemoDataError(f"{path}: provinces missing: {sorted(missing)}")
    order = [p.code for p in MAINLAND_PROVINCES]
    return tuple(sorted(out, key=lambda p: order.index(p.province.code)))


def _load_charges(path: Path) -> tuple[tuple[ChargeProfile, ...], dict[str, tuple[tuple[str, float], ...]]]:
    raw = _read(path)
    charges: list[ChargeProfile] = []
    for i, entry in enumerate(raw.get("charge", [])):
        where = f"{path}: charge #{i} ({entry.get('name', '?')})"
        quantity = _field(entry, "quantity", str, where)
        if quantity not in QUANTITY_KINDS:
            raise DemoDataError(f"{where}: quantity {quantity!r} is not one of {QUANTITY_KINDS}")
        try:
            injuries = tuple((float(w), InjuryGrade(g)) for w, g in entry.get("injuries", []))
        except ValueError as e:
            raise DemoDataError(f"{where}: injuries: {e}") from None
        occ = entry.get("occurrences")
        alcohol = entry.get("alcohol")
        profile = ChargeProfile(
            name=_field(entry, "name", str, where),
            article=_field(entry, "article", int, where),
            article_cn=_field(entry, "article_cn", str, where),
            weight=float(_field(entry, "weight", (int, float), where)),
            quantity=quantity,
            tiers=tuple((float(w), float(lo), float(hi), str(d)) for w, lo, hi, d in entry.get("tiers", [])),
            injuries=injuries,
            drugs=tuple((float(w), str(d)) for w, d in entry.get("drugs", [])),
            grams=tuple((float(w), float(lo), float(hi)) for w, lo, hi in entry.get("grams", [])),
            deaths=tuple((float(w), int(n)) for w, n in entry.get("deaths", [])),
            alcohol=(float(alcohol[0]), float(alcohol[1])) if alcohol else None,
            occurrences=(float(occ[0]), int(occ[1]), int(occ[2])) if occ else None,
            joint=float(_field(entry, "joint", (int, float), where)),
            attempt=float(_field(entry, "attempt", (int, float), where)),
            compensable=str(entry.get("compensable", "")),
            items=tuple(entry.get("items", ())) or ("财物",),
            weapons=tuple(entry.get("weapons", ())) or ("拳脚",),
            methods=tuple(entry.get("methods", ())) or ("秘密",),
            facts=tuple(_field(entry, "facts", list, where)),
            counted_facts=tuple(t for t in entry.get("facts", ()) if "{times}" in t and "{date2}" in t),
            single_facts=tuple(t for t in entry.get("facts", ()) if "{date2}" not in t),
            attempt_facts=tuple(entry.get("attempt_facts", ())),
            death_facts=tuple(entry.get("death_facts", ())),
            finding=_field(entry, "finding", str, where),
            charged=_field(entry, "charged", str, where),
        )
        needs = {"amount": profile.tiers, "drugs": profile.drugs and profile.grams, "injury": profile.injuries,
                 "alcohol": profile.alcohol, "traffic": profile.deaths}.get(quantity, True)
        if not needs:
            raise DemoDataError(f"{where}: quantity {quantity!r} needs its distribution (tiers/drugs/injuries/…)")
        if profile.occurrences and not profile.counted_facts:
            raise DemoDataError(f"{where}: occurrences need a fact template with {{times}} over a period ({{date2}})")
        if profile.attempt and not profile.attempt_facts:
            raise DemoDataError(f"{where}: attempt > 0 needs attempt_facts")
        charges.append(profile)
    names = {c.name for c in charges}
    combos: dict[str, list[tuple[str, float]]] = {}
    for first, second, p in raw.get("combinations", {}).get("pairs", []):
        if first not in names or second not in names:
            raise DemoDataError(f"{path}: combinations: unknown charge in {[first, second]}")
        combos.setdefault(first, []).append((second, float(p)))
    return tuple(charges), {k: tuple(v) for k, v in combos.items()}


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DemoDataError(f"demo data file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise DemoDataError(f"{path}: not valid TOML: {e}") from None


def _field(entry: object, name: str, kind: type | tuple[type, ...], where: str):
    if not isinstance(entry, dict) or name not in entry:
        raise DemoDataError(f"{where}: missing field {name!r}")
    value = entry[name]
    if not isinstance(value, kind):
        raise DemoDataError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
    return value


@lru_cache(maxsize=1)
def default_world() -> World:
    """The bundled demo world, read once per process."""
    charges, combos = _load_charges(CHARGES_PATH)
    return World(provinces=_load_provinces(PROVINCES_PATH), charges=charges, combinations=combos)
