"""Cohort statistics of comparable past sentences (JSIN-style, DOMAIN.md §6).

A cohort is defined by the defendant's principal charge, statutory tier and key circumstances
(retrieval.profile.KEY_CIRCUMSTANCES, matched both present and absent). When that cohort is
smaller than the minimum, criteria are dropped in a fixed order (circumstances, then tier) and
the definition says which were dropped. Below the minimum nothing is reported, with the reason;
life and death sentences are counted apart from the month statistics, never silently dropped.

A cohort reads only its charge's slice of the charge-grouped columns (retrieval.index.ChargeOrder),
and its statistics come from counts of (province, non-custodial, term) codes: terms are a few
hundred small integers, so medians and quartiles of a hundred thousand sentences are read off
cumulative counts, bit for bit what numpy computes from the sorted sample.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from retrieval.index import ChargeOrder, Vocab, live_in_scope
from retrieval.profile import KEY_CIRCUMSTANCES, DefendantProfile, circumstance_mask
from sentencing.regions import BY_CODE
from sentencing.sentence import CAIL_DEATH, CAIL_LIFE, SentenceForm

HISTOGRAM_EDGES_MONTHS: tuple[int, ...] = (0, 1, 6, 12, 24, 36, 60, 120, 180, 301)
"""Bins [low, high): 0 = no term (fine only / exempt), then 拘役, ≤1 y, 1–2 y, 2–3 y (缓刑 limit), …"""

FORMS: tuple[SentenceForm, ...] = tuple(SentenceForm)
NON_CUSTODIAL_FORMS = frozenset(
    FORMS.index(f) for f in (SentenceForm.NON_CUSTODIAL, SentenceForm.PROBATION)
)
KEY_MASK = circumstance_mask(frozenset(KEY_CIRCUMSTANCES))
NON_CUSTODIAL_LUT = np.array([False] + [i in NON_CUSTODIAL_FORMS for i in range(len(FORMS))], dtype=bool)
"""Indexed by form column + 1 (the column's −1, no sentence, is not non-custodial)."""


class HistogramBin(BaseModel):
    low_months: int
    high_months: int
    """Exclusive upper bound."""
    count: int


class ProvinceCohort(BaseModel):
    province: str | None
    """Province code (``JS``); None for cases whose province is unknown (e.g. CAIL data)."""
    province_name: str | None = None
    n: int
    median_months: float | None = None
    share_non_custodial: float | None = None
    reported: bool = False


class CohortStats(BaseModel):
    definition: dict[str, Any]
    """What the cohort is: charge, tier, circumstances used, province scope, criteria dropped."""
    n: int
    """Sentenced defendants in the cohort (life and death included)."""
    reported: bool
    reason: str | None = None
    """Why nothing is reported (cohort too small), or None."""
    median_months: float | None = None
    q1_months: float | None = None
    q3_months: float | None = None
    histogram: list[HistogramBin] = Field(default_factory=list)
    share_non_custodial: float | None = None
    """缓刑 or a non-custodial penalty (管制, 单处罚金, 免予刑事处罚), over all n."""
    by_province: list[ProvinceCohort] = Field(default_factory=list)
    excluded: dict[str, int] = Field(default_factory=dict)
    """Cohort members left out of the month statistics, by reason (life, death)."""


def _criteria(
    columns: dict[str, np.ndarray], vocab: dict[str, Vocab], profile: DefendantProfile
) -> list[tuple[str, np.ndarray | None, Any]]:
    """(name, mask over the charge's rows, value) of each criterion, most important first.

    The rows are those of the principal charge already, so its mask is None (all of them).
    """
    key = circumstance_mask(profile.key_circumstances)
    criteria: list[tuple[str, np.ndarray | None, Any]] = [("charge", None, profile.charge)]
    if profile.tier is not None:
        criteria.append(("tier", columns["tier"] == vocab["tiers"].get(profile.tier), profile.tier))
    criteria.append(
        (
            "circumstances",
            (columns["circumstances"] & KEY_MASK) == key,
            {
                "present": sorted(c.label for c in profile.key_circumstances),
                "absent": sorted(c.label for c in KEY_CIRCUMSTANCES if c not in profile.key_circumstances),
            },
        )
    )
    return criteria


@dataclass(frozen=True)
class CohortCounts:
    """A cohort's members counted by (province, non-custodial, term): what the shards of a split
    index add up (:meth:`merge`) before the statistics are read off the sum, exactly as one index
    would read them."""

    provinces: tuple[str | None, ...]
    """Province code of each slot (None: unknown)."""
    counts: np.ndarray
    """(province slot × non-custodial × term slot) counts."""
    offset: int
    """Term ``t`` is counted in slot ``t + offset`` (CAIL codes for life and death are negative)."""

    @classmethod
    def merge(cls, parts: list[CohortCounts]) -> CohortCounts:
        provinces = tuple(dict.fromkeys(p for part in parts for p in part.provinces))
        slot = {p: i for i, p in enumerate(provinces)}
        offset = max((part.offset for part in parts), default=0)
        width = max((part.counts.shape[2] - part.offset + offset for part in parts), default=1)
        total = np.zeros((len(provinces), 2, width), dtype=np.int64)
        for part in parts:
            start = offset - part.offset
            rows = [slot[p] for p in part.provinces]
            total[rows, :, start : start + part.counts.shape[2]] += part.counts
        return cls(provinces, total, offset)


class CohortQuery:
    """The cohort of one defendant profile among one index's rows (a shard's, when it is split),
    criterion by criterion: charge, tier, key circumstances, most specific first."""

    def __init__(
        self,
        order: ChargeOrder,
        vocab: dict[str, Vocab],
        profile: DefendantProfile,
        *,
        scope: str,
        province_id: int | None,
        exclude_rows: list[int],
    ) -> None:
        if profile.charge is None:
            raise ValueError("a defendant without a charge has no cohort (see cohort_stats)")
        self.order = order
        self.vocab = vocab
        self.span, columns = order.charge_columns(vocab["charges"].get(profile.charge))
        self.base = live_in_scope(columns, scope, province_id)
        self.base[order.positions(self.span, exclude_rows)] = False
        self.criteria = _criteria(columns, vocab, profile)
        self._masks: dict[int, np.ndarray] = {}

    def mask(self, used: int) -> np.ndarray:
        """The rows matching the first ``used`` criteria (each computed once)."""
        mask = self._masks.get(used)
        if mask is None:
            mask = self.base.copy()
            for _name, m, _value in self.criteria[:used]:
                if m is not None:
                    mask &= m
            self._masks[used] = mask
        return mask

    def sizes(self) -> Iterator[int]:
        """Rows matching all criteria, all but the last, …, the charge alone; lazily."""
        return (int(np.count_nonzero(self.mask(used))) for used in range(len(self.criteria), 0, -1))

    def counts(self, used: int) -> CohortCounts:
        """The members matching the first ``used`` criteria, counted by (province, non-custodial, term)."""
        outcomes: _Outcomes = self.order.derived("cohort_outcomes", _outcomes)
        counts = np.bincount(outcomes.code[self.span][self.mask(used)],
                             minlength=outcomes.n_slots * 2 * outcomes.width)
        provinces = tuple(self.vocab["provinces"].name(s - 1) for s in range(outcomes.n_slots))
        return CohortCounts(provinces, counts.reshape(outcomes.n_slots, 2, outcomes.width), outcomes.offset)


def cohort_stats(queries: Sequence[CohortQuery], profile: DefendantProfile, *, scope: str, min_n: int) -> CohortStats:
    """The cohort of ``profile`` over the rows of every query (one per index, or per shard of a split
    one): criteria are dropped, circumstances first, then tier, while the summed sizes are below
    ``min_n``, and the statistics are read off the summed counts, as one index of every row would."""
    if profile.charge is None:
        return CohortStats(definition={"province_scope": scope, "min_n": min_n}, n=0, reported=False,
                           reason="被告人没有罪名，无法界定同类案件群")
    sizes = (sum(level) for level in zip(*(q.sizes() for q in queries), strict=True))  # lazily, level by level
    used = _relaxation(sizes, len(queries[0].criteria), min_n)
    counts = CohortCounts.merge([q.counts(used) for q in queries])
    return _cohort_of(counts, profile, queries[0].criteria, used, scope=scope, min_n=min_n)


def _relaxation(sizes: Iterable[int], n_criteria: int, min_n: int) -> int:
    """How many criteria a cohort uses, given its sizes with all of them, all but the last, …"""
    for k, n in enumerate(sizes):
        if n >= min_n:
            return n_criteria - k
    return 1


def _cohort_of(
    counted: CohortCounts,
    profile: DefendantProfile,
    criteria: list[tuple[str, np.ndarray | None, Any]],
    used: int,
    *,
    scope: str,
    min_n: int,
) -> CohortStats:
    """The statistics of a cohort from its counts, with the definition of the criteria ``used``."""
    definition: dict[str, Any] = {"province_scope": scope, "min_n": min_n}
    if profile.tier is None:
        definition["tier"] = None
        definition["tier_note"] = "量刑指导计算未能确定法定刑幅度，未按幅度筛选"
    dropped = [name for name, _m, _v in criteria[used:]]
    for name, _m, value in criteria:
        if name not in dropped:
            definition[name] = value
    if dropped:
        definition["relaxed"] = dropped
        definition["relaxed_note"] = "同类案件不足{}件，已放宽：{}".format(
            min_n, "、".join({"tier": "法定刑幅度", "circumstances": "关键情节"}[d] for d in dropped)
        )
    counts, offset = counted.counts, counted.offset
    by_term = counts.sum(axis=(0, 1))
    n = int(by_term.sum())
    months = by_term[offset:]
    n_months = int(months.sum())
    excluded = {"life": _count_of(by_term, offset, CAIL_LIFE), "death": _count_of(by_term, offset, CAIL_DEATH)}
    stats = CohortStats(definition=definition, n=n, reported=False, excluded=excluded)
    stats.by_province = _by_province(counted.provinces, counts, offset, min_n)
    if n < min_n or n_months < min_n:
        stats.reason = f"同类案件仅{n}件（其中有期限刑罚{n_months}件），少于{min_n}件，不报告统计值"
        return stats
    stats.q1_months, stats.median_months, stats.q3_months = _percentiles(months, (0.25, 0.5, 0.75))
    stats.histogram = [
        HistogramBin(low_months=lo, high_months=hi, count=c)
        for lo, hi, c in zip(HISTOGRAM_EDGES_MONTHS[:-1], HISTOGRAM_EDGES_MONTHS[1:], _histogram(months), strict=True)
    ]
    stats.share_non_custodial = int(counts[:, 1, :].sum()) / n
    stats.reported = True
    return stats


def _count_of(by_term: np.ndarray, offset: int, term: int) -> int:
    i = term + offset
    return int(by_term[i]) if 0 <= i < len(by_term) else 0


@dataclass(frozen=True)
class _Outcomes:
    """Each row's (province, non-custodial, term) as one small int, in charge order: a cohort's
    statistics are then one ``bincount`` of its rows' codes (terms are a few hundred values)."""

    code: np.ndarray
    n_slots: int
    """Province slots: slot 0 is the unknown province (−1), slot i+1 the province id i."""
    width: int
    """Term values: slot ``term + offset`` in [0, width)."""
    offset: int


def _outcomes(order: ChargeOrder) -> _Outcomes:
    columns = order.columns
    term = columns["term"].astype(np.int64)
    slot = columns["province"].astype(np.int64) + 1
    offset = -min(int(term.min()), 0) if len(term) else 0
    width = int(term.max()) + offset + 1 if len(term) else 1
    n_slots = int(slot.max()) + 1 if len(slot) else 1
    non_custodial = NON_CUSTODIAL_LUT[columns["form"].astype(np.int64) + 1]
    code = (slot * 2 + non_custodial) * width + term + offset
    return _Outcomes(code.astype(np.int32 if n_slots * 2 * width < 2**31 else np.int64), n_slots, width, offset)


def _value_at(cumulative: np.ndarray, position: int) -> int:
    """The value at ``position`` of the sorted sample whose value counts have this cumulative sum."""
    return int(np.searchsorted(cumulative, position, side="right"))


def _percentiles(counts: np.ndarray, quantiles: tuple[float, ...]) -> list[float]:
    """``np.percentile`` (linear method) of the month sample given as value counts, bit for bit.

    Months are small integers, so a cohort of a hundred thousand terms is a few hundred counts;
    numpy's arithmetic (virtual index (n−1)·q, interpolation from the nearer side) is followed
    exactly (tests compare with np.percentile).
    """
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    out: list[float] = []
    for q in quantiles:
        virtual = (n - 1) * q
        if virtual >= n - 1:
            out.append(float(_value_at(cumulative, n - 1)))
            continue
        previous = math.floor(virtual)
        a, b = _value_at(cumulative, previous), _value_at(cumulative, previous + 1)
        gamma = virtual - previous
        diff = float(b - a)
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out


def _median(counts: np.ndarray) -> float:
    """``np.median`` of the sample given as value counts (the mean of the two middle values)."""
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    if n % 2:
        return float(_value_at(cumulative, n // 2))
    return (float(_value_at(cumulative, n // 2 - 1)) + float(_value_at(cumulative, n // 2))) / 2


def _histogram(counts: np.ndarray) -> list[int]:
    """``np.histogram`` over HISTOGRAM_EDGES_MONTHS of the sample given as value counts (last bin closed)."""
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    def below(month: int) -> int:  # sample values < month
        return int(cumulative[min(max(month, 0), len(counts))])
    edges = HISTOGRAM_EDGES_MONTHS
    bins = [below(hi) - below(lo) for lo, hi in itertools.pairwise(edges[:-1])]
    bins.append(below(edges[-1] + 1) - below(edges[-2]))
    return bins


def _by_province(
    provinces: tuple[str | None, ...], counts: np.ndarray, offset: int, min_n: int
) -> list[ProvinceCohort]:
    """Per-province counts, medians and non-custodial shares from the cohort's
    (province slot × non-custodial × term) counts."""
    out: list[ProvinceCohort] = []
    sizes = counts.sum(axis=(1, 2))
    non_custodial = counts[:, 1, :].sum(axis=1)
    months = counts[:, :, offset:].sum(axis=1)
    n_months = months.sum(axis=1)
    for s in np.flatnonzero(sizes).tolist():
        code = provinces[s]
        n = int(sizes[s])
        reported = n >= min_n and int(n_months[s]) >= min_n
        out.append(
            ProvinceCohort(
                province=code,
                province_name=BY_CODE[code].name if code in BY_CODE else None,
                n=n,
                median_months=_median(months[s]) if reported else None,
                share_non_custodial=int(non_custodial[s]) / n if reported else None,
                reported=reported,
            )
        )
    out.sort(key=lambda p: (-p.n, p.province or "~"))
    return out
