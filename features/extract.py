"""(case, defendant) → one feature vector, laid out by a :class:`FeatureSpec`.

Reads only what is known before judgment: the defendant's indicted charges, circumstances,
quantities, role and age, the co-defendants, the court, and the guideline engine's calculation
(which itself reads only those). It never reads ``sentence`` or ``judgment``.

Built for the serving path: one pass over plain Python values into a preallocated NaN array,
no pandas, no per-call pydantic validation.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from features.spec import CIRCUMSTANCE_DIRECTION, DRUGS, ROLE_RANK, FeatureSpec
from sentencing.case import Case, Defendant, Quantities, Role
from sentencing.charges import ChargeCatalogue
from sentencing.guideline import calculate
from sentencing.sentence import TERM_BOUNDS_MONTHS, SentenceForm, SentenceKind

_NAN = math.nan
_OTHER_DRUG = "其他"
_MITIGATING = frozenset(code for code, d in CIRCUMSTANCE_DIRECTION.items() if d < 0)
_AGGRAVATING = frozenset(code for code, d in CIRCUMSTANCE_DIRECTION.items() if d > 0)
# Court names often spell drugs differently from the feature vocabulary.
_DRUG_ALIASES = {"冰毒": "甲基苯丙胺", "甲基苯丙胺片剂": "甲基苯丙胺", "麻古": "甲基苯丙胺", "K粉": "氯胺酮"}


_SCALAR_COLUMNS = (
    "amount_known", "amount_log_yuan", "drugs_known", "drugs_log_meth_equivalent", "injury_known", "injury_max_rank",
    "injury_count", "occurrences", "deaths", "alcohol_mg_per_100ml", "circ_count_mitigating",
    "circ_count_aggravating", "role_rank", "role_position", "codefendants_count", "codefendants_amount_share",
    "codefendants_principal_same_circumstances", "age_known", "age", "charges_count", "region_known",
    "guideline_known", "guideline_low", "guideline_point", "guideline_high", "guideline_width",
    "guideline_starting_point", "guideline_baseline", "guideline_adjusted", "guideline_probation_eligible",
    "guideline_warnings", "statutory_min", "statutory_max", "statutory_max_life_or_death",
)
"""Columns the extractor writes by name (looked up once per spec, as attributes of ``FeatureExtractor._c``)."""
_GUIDELINE_MEMO_SIZE = 256
"""Guideline results whose columns are remembered by identity (a cached result is reused across requests)."""


LIFE_AS_MONTHS = float(TERM_BOUNDS_MONTHS[SentenceKind.FIXED_TERM][1])
"""A guideline result of 无期徒刑 as a term: the heaviest fixed term of one crime (15 years).

As NaN it read as "no guideline at all" (a charge outside the catalogue, mostly light), and a
defendant whose guideline said life got a range of a few months. As the heaviest fixed term it is
what it means to the term model: above every fixed-term result (the monotone direction of the
guideline columns holds), and the range a court gives when it stops short of life."""


_LIFE_LOG = math.log1p(LIFE_AS_MONTHS)
_BEYOND_TERM = frozenset({SentenceKind.LIFE, SentenceKind.DEATH})
"""Guideline results past every fixed term: a tier of 死刑 alone gives 死刑 (劫持航空器 that kills)."""


def log_months(months: float | None) -> float:
    """The model's scale for a term: ln(1 + months); NaN when there is no term."""
    return math.log1p(months) if months is not None and months >= 0 else _NAN


class FeatureExtractor:
    """Fills feature vectors for one spec; keep one per loaded model (it caches name → column)."""

    def __init__(self, spec: FeatureSpec, catalogue: ChargeCatalogue) -> None:
        if catalogue.version != spec.ruleset_version:
            raise ValueError(
                f"feature spec was built with rule set {spec.ruleset_version!r}, the catalogue is {catalogue.version!r}"
            )
        self.spec = spec
        self.catalogue = catalogue
        self._resolved: dict[str, tuple[str | None, str | None]] = {}
        self._col = {name: i for i, name in enumerate(spec.names)}
        self._charge_cols = {c: self._col[f"charge_{c}"] for c in spec.charges}
        self._family_cols = {f: self._col[f"charge_family_{f}"] for f in spec.families}
        self._circ_cols = {code: self._col[f"circ_{code.value}"] for code in CIRCUMSTANCE_DIRECTION}
        self._drug_cols = {d: self._col[f"drugs_log_grams_{d}"] for d in DRUGS}
        self._form_cols = {f: self._col[f"guideline_form_{f.value}"] for f in SentenceForm}
        self._region_cols = {p: self._col[f"region_{p}"] for p in spec.provinces}
        self._court_cols = {lvl: self._col[f"court_{lvl}"] for lvl in ("basic", "intermediate", "high")}
        # Every row starts as this template: NaN (unknown) for measurements, 0 for indicator columns,
        # so a row only writes what the case actually says.
        self._template: list[float] = [_NAN] * spec.n_features
        indicators = [
            *self._charge_cols.values(), *self._family_cols.values(), self._col["charge_其他"],
            self._col["charge_family_其他"], *self._circ_cols.values(), *self._form_cols.values(),
            *self._region_cols.values(), *(self._col[f"role_{r}"] for r in ("principal", "accessory", "coerced",
                                                                              "instigator")),
        ]
        for c in indicators:
            self._template[c] = 0.0
        self._template_row = np.array(self._template, dtype=np.float64)
        self._role_cols = {r.value: self._col[f"role_{r.value}"] for r in Role if f"role_{r.value}" in self._col}
        self._c = SimpleNamespace(**{name: self._col[name] for name in _SCALAR_COLUMNS},
                                  charge_other=self._col["charge_其他"],
                                  charge_family_other=self._col["charge_family_其他"])
        self._no_guideline: dict[int, float] = {self._c.guideline_known: 0.0}
        self._guideline_memo: OrderedDict[int, tuple[Any, dict[int, float]]] = OrderedDict()

    def case_matrix(self, case: Case, guidelines: Sequence[Any | None]) -> np.ndarray:
        """One row per defendant, in order; ``guidelines[i]`` is defendant i's GuidelineResult or None.

        The rows start as copies of the template in one preallocated array; the defendants then
        write only the cells their case sets, all rows in one ``put`` (a numpy call per row costs
        more than filling the row).
        """
        if len(guidelines) != len(case.defendants):
            raise ValueError(
                f"case {case.id}: {len(guidelines)} guideline results for {len(case.defendants)} defendants"
            )
        n = len(case.defendants)
        X = np.empty((n, self.spec.n_features))
        X[:] = self._template_row
        if n == 0:
            return X
        context = _CaseContext(case)
        width = self.spec.n_features
        flat: list[int] = []
        values: list[float] = []
        for i, (defendant, result) in enumerate(zip(case.defendants, guidelines, strict=True)):
            cells: dict[int, float] = {}
            self._fill(cells, case, i, defendant, result, context)
            start = i * width
            flat += [start + c for c in cells]
            values += cells.values()
        X.put(flat, values)
        return X

    # ------------------------------------------------------------------ one row

    def _fill(self, row: dict[int, float], case: Case, position: int, d: Defendant, g: Any | None,
              ctx: _CaseContext) -> None:
        """Writes the cells of one defendant's row that differ from the template (last write wins)."""
        col = self._c
        row.update(self._guideline_cells(g))
        # Quantities.
        q = d.quantities
        amount = q.amount_yuan.value if q.amount_yuan is not None else None
        row[col.amount_known] = float(amount is not None)
        if amount is not None and amount >= 0:
            row[col.amount_log_yuan] = math.log1p(amount)
        row[col.drugs_known] = float(bool(q.drug_grams))
        if q.drug_grams:
            grams: dict[str, float] = {}
            for drug, measure in q.drug_grams.items():
                key = _DRUG_ALIASES.get(drug, drug)
                key = key if key in self._drug_cols else _OTHER_DRUG
                grams[key] = grams.get(key, 0.0) + max(measure.value, 0.0)
            for drug, g_value in grams.items():
                row[self._drug_cols[drug]] = math.log1p(g_value)
            equivalents = [self.catalogue.meth_equivalent_grams(_DRUG_ALIASES.get(k, k), m.value)
                           for k, m in q.drug_grams.items()]
            known = [e for e in equivalents if e is not None]
            if known:
                row[col.drugs_log_meth_equivalent] = math.log1p(max(sum(known), 0.0))
        row[col.injury_known] = float(bool(q.injuries))
        if q.injuries:
            row[col.injury_max_rank] = max(i.grade.rank for i in q.injuries)
            row[col.injury_count] = sum(i.count for i in q.injuries)
        if q.occurrences is not None:
            row[col.occurrences] = q.occurrences.value
        if q.deaths is not None:
            row[col.deaths] = q.deaths.value
        if q.blood_alcohol_mg_per_100ml is not None:
            row[col.alcohol_mg_per_100ml] = q.blood_alcohol_mg_per_100ml.value
        # Circumstances: a flag is 1 when extracted, 0 when the facts do not show it.
        codes = d.circumstance_codes
        circ_cols = self._circ_cols
        for code in codes:
            if (c := circ_cols.get(code)) is not None:
                row[c] = 1.0
        row[col.circ_count_mitigating] = len(codes & _MITIGATING)
        row[col.circ_count_aggravating] = len(codes & _AGGRAVATING)
        # Joint crime.
        role = d.role.value
        row[col.role_rank] = ROLE_RANK[role]
        if (c := self._role_cols.get(role)) is not None:
            row[c] = 1.0
        n = len(case.defendants)
        row[col.role_position] = position / n if n > 1 else 0.0
        row[col.codefendants_count] = n - 1
        if amount is not None and ctx.amount_total and ctx.amount_total > 0:
            row[col.codefendants_amount_share] = amount / ctx.amount_total
        same = ctx.principal_same(position, codes)
        if same is not None:
            row[col.codefendants_principal_same_circumstances] = same
        row[col.age_known] = float(d.age is not None)
        if d.age is not None:
            row[col.age] = d.age
        # Charges: one-hot over the vocabulary, "其他" for the rest.
        row[col.charges_count] = len(d.charges)
        self._fill_onehot_charges(row, d)
        # Region and court.
        province = case.known_province
        row[col.region_known] = float(province is not None)
        if province is not None and (c := self._region_cols.get(province)) is not None:
            row[c] = 1.0
        level = case.court.level.value if case.court is not None and case.court.level is not None else None
        if level is not None:
            for lvl, c in self._court_cols.items():
                row[c] = float(level == lvl)

    def _fill_onehot_charges(self, row: dict[int, float], d: Defendant) -> None:
        other_charge = self._c.charge_other
        other_family = self._c.charge_family_other
        for charge in d.charges:
            name, family = self.resolve(charge.name)
            row[self._charge_cols.get(name, other_charge) if name else other_charge] = 1.0
            row[self._family_cols.get(family, other_family) if family else other_family] = 1.0

    def resolve(self, charge_name: str) -> tuple[str | None, str | None]:
        """(canonical name, family) of a charge as the catalogue knows it; (None, None) otherwise."""
        hit = self._resolved.get(charge_name)
        if hit is None:
            spec = self.catalogue.resolve(charge_name)
            hit = (spec.name, spec.family.value) if spec is not None else (None, None)
            self._resolved[charge_name] = hit
        return hit

    def _guideline_cells(self, g: Any | None) -> dict[int, float]:
        """The guideline columns of a row; the same result always gives the same cells (memoised by identity)."""
        if g is None:
            return self._no_guideline
        memo = self._guideline_memo.get(id(g))
        if memo is not None and memo[0] is g:
            return memo[1]
        col = self._c
        row: dict[int, float] = {col.guideline_known: 1.0}
        if g.kind in _BEYOND_TERM:
            low = point = high = _LIFE_LOG
        else:
            low, point, high = log_months(g.low_months), log_months(g.point_months), log_months(g.high_months)
        row[col.guideline_low] = low
        row[col.guideline_point] = point
        row[col.guideline_high] = high
        row[col.guideline_width] = high - low
        results = list(g.charge_results or [])
        if results:
            row[col.guideline_starting_point] = _max_log(r.starting_point_months for r in results)
            row[col.guideline_baseline] = _max_log(r.baseline_months for r in results)
            row[col.guideline_adjusted] = _max_log(LIFE_AS_MONTHS if r.kind in _BEYOND_TERM else r.adjusted_months
                                                   for r in results)
        form = g.form
        if form is not None:
            row[self._form_cols[SentenceForm(form)]] = 1.0
        row[col.guideline_probation_eligible] = float(bool(g.probation_eligible))
        row[col.guideline_warnings] = len(g.warnings or ())
        stat = g.statutory
        if stat is not None:
            row[col.statutory_min] = log_months(stat.min_months)
            row[col.statutory_max] = log_months(stat.max_months)
            max_kind = getattr(stat.max_kind, "value", stat.max_kind)
            row[col.statutory_max_life_or_death] = max_kind in ("life", "death", "death_suspended")
        if len(self._guideline_memo) >= _GUIDELINE_MEMO_SIZE:
            # The oldest alone: clearing the memo freed 256 results at once, 1–1.5 ms in one request of
            # ~85 with new cases (the p99 of a 3-defendant prediction, benchmarks/bench_predict.py).
            self._guideline_memo.popitem(last=False)
        self._guideline_memo[id(g)] = (g, row)  # holding g keeps its id from being reused
        return row


def _max_log(values: Any) -> float:
    known = [v for v in values if v is not None]
    return math.log1p(max(known)) if known else _NAN


class _CaseContext:
    """What every defendant's row needs to know about the others (共同犯罪)."""

    __slots__ = ("amount_total", "principals")

    def __init__(self, case: Case) -> None:
        amounts = [d.quantities.amount_yuan.value for d in case.defendants if d.quantities.amount_yuan is not None]
        self.amount_total = sum(amounts) if amounts else None
        self.principals = [
            (i, d.circumstance_codes) for i, d in enumerate(case.defendants) if d.role is Role.PRINCIPAL
        ]

    def principal_same(self, position: int, codes: set) -> float | None:
        """1 if some other principal has exactly these circumstances, 0 if none has, None without principal."""
        others = [c for i, c in self.principals if i != position]
        if not others:
            return None
        return float(any(c == codes for c in others))


def guideline_results(case: Case, catalogue: ChargeCatalogue) -> tuple[list[Any | None], list[str]]:
    """The guideline engine's result for each defendant; None (with a warning) where it cannot price one.

    A charge outside the catalogue, or facts the engine cannot place in a tier, is not a crash:
    the model then predicts without guideline features (they are NaN and ``guideline_known`` is 0).
    """
    results: list[Any | None] = []
    warnings: list[str] = []
    for d in case.defendants:
        result, warning = _calculate(d, case, catalogue)
        results.append(result)
        if warning is not None:
            warnings.append(warning)
    return results, warnings


def _calculate(d: Defendant, case: Case, catalogue: ChargeCatalogue) -> tuple[Any | None, str | None]:
    try:
        return calculate(d, case, catalogue=catalogue), None
    except (ValueError, LookupError) as e:
        return None, f"{d.name}: 量刑指导意见无法测算 ({e})"


def guideline_key(d: Defendant, province: str | None) -> tuple[Any, ...]:
    """Everything ``sentencing.guideline.calculate`` reads about a defendant, as a hashable summary.

    Name, whether a unit, charges (with any stated tier, whether it was read from the texts, and any
    quantities of their own), role,
    age, circumstances (in order), aggravations, quantities, the court's
    province; never the sentence or evidence spans. tests/test_predict_fast.py fails when Defendant or
    Quantities gain a field this summary does not account for.
    """
    return (
        province, d.name, d.is_unit,
        tuple([(c.name, c.tier, c.tier_read, None if c.quantities is None else _quantities_key(c.quantities))
               for c in d.charges]),
        d.role, d.age,
        tuple([c.code for c in d.circumstances]), tuple([a.code for a in d.aggravations]),
        _quantities_key(d.quantities),
    )


def _quantities_key(q: Quantities) -> tuple[Any, ...]:
    return (
        q.amount_yuan.value if q.amount_yuan is not None else None,
        tuple([(k, m.value) for k, m in q.drug_grams.items()]),
        tuple([(i.grade, i.count) for i in q.injuries]),
        q.occurrences.value if q.occurrences is not None else None,
        q.deaths.value if q.deaths is not None else None,
        q.blood_alcohol_mg_per_100ml.value if q.blood_alcohol_mg_per_100ml is not None else None,
    )


class GuidelineCache:
    """``guideline_results`` remembering the last ``maxsize`` defendants (LRU), for the serving path.

    The calculation costs tens of µs per defendant and a request often repeats one already seen
    (a prosecutor re-asks after changing one circumstance of one co-defendant). Cached results are
    shared between calls: treat them as read-only. ``maxsize=0`` calculates every time.
    """

    def __init__(self, catalogue: ChargeCatalogue, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError(f"guideline cache size must be ≥ 0, got {maxsize}")
        self.catalogue = catalogue
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any | None, str | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def results(self, case: Case) -> tuple[list[Any | None], list[str]]:
        """Same as :func:`guideline_results` for this catalogue."""
        if self.maxsize == 0:
            return guideline_results(case, self.catalogue)
        province = case.known_province
        results: list[Any | None] = []
        warnings: list[str] = []
        entries = self._entries
        for d in case.defendants:
            key = guideline_key(d, province)
            with self._lock:
                hit = entries.get(key)
                if hit is not None:
                    entries.move_to_end(key)
                    self.hits += 1
            if hit is None:
                hit = _calculate(d, case, self.catalogue)
                with self._lock:
                    self.misses += 1
                    entries[key] = hit
                    if len(entries) > self.maxsize:
                        entries.popitem(last=False)
            results.append(hit[0])
            if hit[1] is not None:
                warnings.append(hit[1])
        return results, warnings

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
