"""Cases → the training table: one row per sentenced defendant, grouped by case.

Features are computed from ``case.before_judgment()`` so that no label can leak into them; the
labels (term, form) are read from the original case. Defendants of one case share a group id so
that cross-validation keeps them in one fold.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.extract import FeatureExtractor, guideline_results, log_months
from features.text import case_text
from sentencing.case import Case
from sentencing.sentence import CAIL_DEATH, CAIL_LIFE, SentenceForm, SentenceKind
from training.models import TERM_UNKNOWN_FORM

FORM_UNKNOWN_SOURCES = frozenset({"lawbench", "cail2018"})
"""Sources whose labels give the months but not whether the term was suspended (缓刑)."""


@dataclass
class Dataset:
    """The training/evaluation table; ``term_months`` is the CAIL label (−1 life, −2 death)."""

    X: np.ndarray
    term_months: np.ndarray
    forms: list[str]
    groups: np.ndarray
    case_ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    charges: list[str] = field(default_factory=list)
    """Canonical name of the defendant's first charge ('其他' when the catalogue lacks it)."""
    families: list[str] = field(default_factory=list)
    provinces: list[str] = field(default_factory=list)
    n_defendants: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sources: list[str] = field(default_factory=list)
    guideline: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    """(n, 3) guideline low / point / high months (NaN for life/death or no guideline)."""
    guideline_cail: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """The guideline's CAIL-style label: point months, −1 life, −2 death (NaN without a result)."""
    guideline_custodial: list[bool | None] = field(default_factory=list)
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Index of the defendant within its case."""
    units: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Unit defendants (被告单位): the law fixes their outcome (a fine, no term), so models never learn
    from them, and evaluation scores them with that outcome (training.predictor.set_unit_outcome)."""
    texts: list[str] = field(default_factory=list)
    """The facts as known before judgment (for text baselines); empty when not ``texts_loaded``."""
    data_hash: str = ""
    texts_loaded: bool = True
    """False for a dataset read back without its texts (at a million rows they take 1.4 GiB, and only
    the optional text model reads them): ``texts`` is then empty."""

    def __len__(self) -> int:
        return len(self.term_months)

    @property
    def has_term(self) -> np.ndarray:
        return self.term_months >= 0

    @property
    def y_log(self) -> np.ndarray:
        """ln(1 + months); NaN for life and death."""
        return np.array([log_months(m) if m >= 0 else np.nan for m in self.term_months])

    def subset(self, rows: np.ndarray) -> Dataset:
        rows = np.asarray(rows)
        pick = rows.tolist() if rows.dtype != bool else np.flatnonzero(rows).tolist()
        return Dataset(
            X=self.X[pick], term_months=self.term_months[pick], forms=[self.forms[i] for i in pick],
            groups=self.groups[pick], case_ids=[self.case_ids[i] for i in pick],
            names=[self.names[i] for i in pick], charges=[self.charges[i] for i in pick],
            families=[self.families[i] for i in pick], provinces=[self.provinces[i] for i in pick],
            n_defendants=self.n_defendants[pick], sources=[self.sources[i] for i in pick],
            guideline=self.guideline[pick], guideline_cail=self.guideline_cail[pick],
            guideline_custodial=[self.guideline_custodial[i] for i in pick], positions=self.positions[pick],
            units=self.units[pick], texts=[self.texts[i] for i in pick] if self.texts_loaded else [],
            data_hash=self.data_hash,
            texts_loaded=self.texts_loaded,
        )


def form_label(case: Case, form: SentenceForm, term_months: int) -> str:
    """The form to learn; a term label (CAIL, LawBench) does not say whether the term was suspended.

    Its 0 does say something: no term at all, a non-custodial sentence.
    """
    if case.source in FORM_UNKNOWN_SOURCES and term_months > 0:
        return TERM_UNKNOWN_FORM
    return form.value


def build_dataset(cases: Iterable[Case], extractor: FeatureExtractor, *, hash_cases: bool = True) -> Dataset:
    """Every defendant with a sentence becomes a row; cases without one contribute nothing.

    ``hash_cases=False`` leaves ``data_hash`` empty, for a caller that has the cases' hashes already
    (the feature cache has the store's): hashing a case costs about 7% of featurising it.
    """
    rows: list[np.ndarray] = []
    term: list[int] = []
    forms: list[str] = []
    groups: list[int] = []
    meta: dict[str, list] = {k: [] for k in ("case_ids", "names", "charges", "families", "provinces", "sources",
                                             "texts")}
    n_def: list[int] = []
    guide: list[tuple[float, float, float]] = []
    guide_cail: list[float] = []
    guide_custodial: list[bool | None] = []
    positions: list[int] = []
    units: list[bool] = []
    hasher = hashlib.sha256()
    n_cases = 0
    for case in cases:
        sentenced = [i for i, d in enumerate(case.defendants) if d.sentence is not None]
        if not sentenced:
            continue
        if hash_cases:
            hasher.update(case.content_hash().encode())
        blind = case.before_judgment()
        results, _ = guideline_results(blind, extractor.catalogue)
        matrix = extractor.case_matrix(blind, results)
        for i in sentenced:
            d = case.defendants[i]
            assert d.sentence is not None
            months = d.sentence.term_months
            rows.append(matrix[i])
            term.append(months)
            forms.append(form_label(case, d.sentence.form, months))
            groups.append(n_cases)
            first = d.charges[0].name if d.charges else ""
            name, family = extractor.resolve(first) if first else (None, None)
            meta["case_ids"].append(case.id)
            meta["names"].append(d.name)
            meta["charges"].append(name or "其他")
            meta["families"].append(family or "other")
            meta["provinces"].append(case.known_province or "未知")
            meta["sources"].append(case.source)
            meta["texts"].append(case_text(blind.facts, blind.reasoning))
            n_def.append(len(case.defendants))
            lo, pt, hi, cail, custodial = guideline_outcome(results[i])
            guide.append((lo, pt, hi))
            guide_cail.append(cail)
            guide_custodial.append(custodial)
            positions.append(i)
            units.append(d.is_unit)
        n_cases += 1
    n_features = extractor.spec.n_features
    return Dataset(
        X=np.vstack(rows) if rows else np.zeros((0, n_features)),
        term_months=np.array(term, dtype=np.int64),
        forms=forms,
        groups=np.array(groups, dtype=np.int64),
        n_defendants=np.array(n_def, dtype=np.int64),
        guideline=np.array(guide, dtype=np.float64).reshape(-1, 3),
        guideline_cail=np.array(guide_cail, dtype=np.float64),
        guideline_custodial=guide_custodial,
        positions=np.array(positions, dtype=np.int64),
        units=np.array(units, dtype=bool),
        data_hash=hasher.hexdigest() if hash_cases else "",
        **meta,
    )


CUSTODIAL_FORMS = frozenset({SentenceForm.CUSTODY.value, SentenceForm.LIFE.value, SentenceForm.DEATH.value})


def guideline_outcome(g: Any | None) -> tuple[float, float, float, float, bool | None]:
    """(low, point, high months, CAIL label, custodial?) of a GuidelineResult; NaNs and None without one."""
    if g is None:
        return math.nan, math.nan, math.nan, math.nan, None
    if g.kind in (SentenceKind.DEATH, SentenceKind.DEATH_SUSPENDED):
        return math.nan, math.nan, math.nan, float(CAIL_DEATH), True
    if g.kind is SentenceKind.LIFE:
        return math.nan, math.nan, math.nan, float(CAIL_LIFE), True
    lo, pt, hi = (math.nan if v is None else float(v) for v in (g.low_months, g.point_months, g.high_months))
    return lo, pt, hi, pt, g.form.value in CUSTODIAL_FORMS


def cail_labels(term_months: np.ndarray) -> list[int]:
    """The CAIL term labels as plain ints (−1 life, −2 death), for sentencing.metrics."""
    return [int(m) if m >= 0 or m in (CAIL_LIFE, CAIL_DEATH) else 0 for m in term_months]


def concat(a: Dataset, b: Dataset) -> Dataset:
    """Rows of ``a`` then ``b``; ``b``'s case groups are renumbered after ``a``'s."""
    shift = int(a.groups.max()) + 1 if len(a) else 0
    return Dataset(
        X=np.vstack([a.X, b.X]), term_months=np.concatenate([a.term_months, b.term_months]),
        forms=a.forms + b.forms, groups=np.concatenate([a.groups, b.groups + shift]),
        case_ids=a.case_ids + b.case_ids, names=a.names + b.names, charges=a.charges + b.charges,
        families=a.families + b.families, provinces=a.provinces + b.provinces,
        n_defendants=np.concatenate([a.n_defendants, b.n_defendants]), sources=a.sources + b.sources,
        guideline=np.vstack([a.guideline, b.guideline]),
        guideline_cail=np.concatenate([a.guideline_cail, b.guideline_cail]),
        guideline_custodial=a.guideline_custodial + b.guideline_custodial,
        positions=np.concatenate([a.positions, b.positions]),
        units=np.concatenate([a.units, b.units]),
        texts=a.texts + b.texts if a.texts_loaded and b.texts_loaded else [],
        texts_loaded=a.texts_loaded and b.texts_loaded,
        data_hash=hashlib.sha256((a.data_hash + b.data_hash).encode()).hexdigest(),
    )
