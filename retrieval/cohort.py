"""Cohort statistics of comparable past sentences (JSIN-style, DOMAIN.md §6).

A cohort is defined by the defendant's principal charge, statutory tier and key circumstances
(retrieval.profile.KEY_CIRCUMSTANCES, matched both present and absent). When that cohort is
smaller than the minimum, criteria are dropped in a fixed order (circumstances, then tier) and
the definition says which were dropped. Below the minimum nothing is reported, with the reason;
life and death sentences are counted apart from the month statistics, never silently dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from retrieval.index import Metadata, Vocab
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


def _criteria_masks(
    meta: Metadata, vocab: dict[str, Vocab], profile: DefendantProfile
) -> list[tuple[str, np.ndarray, Any]]:
    charge_id = vocab["charges"].get(profile.charge)
    tier_id = vocab["tiers"].get(profile.tier)
    key = circumstance_mask(profile.key_circumstances)
    criteria: list[tuple[str, np.ndarray, Any]] = [("charge", meta["charge"] == charge_id, profile.charge)]
    if profile.tier is not None:
        criteria.append(("tier", meta["tier"] == tier_id, profile.tier))
    criteria.append(
        (
            "circumstances",
            (meta["circumstances"] & KEY_MASK) == key,
            {
                "present": sorted(c.label for c in profile.key_circumstances),
                "absent": sorted(c.label for c in KEY_CIRCUMSTANCES if c not in profile.key_circumstances),
            },
        )
    )
    return criteria


def _month_stats(terms: np.ndarray) -> tuple[float, float, float]:
    q1, median, q3 = np.percentile(terms, [25, 50, 75])
    return float(median), float(q1), float(q3)


def cohort_stats(
    meta: Metadata,
    vocab: dict[str, Vocab],
    profile: DefendantProfile,
    base: np.ndarray,
    *,
    scope: str,
    min_n: int,
) -> CohortStats:
    """The cohort of ``profile`` among the ``base`` rows (live rows in the province scope)."""
    definition: dict[str, Any] = {"province_scope": scope, "min_n": min_n}
    if profile.charge is None:
        return CohortStats(definition=definition, n=0, reported=False, reason="被告人没有罪名，无法界定同类案件群")
    criteria = _criteria_masks(meta, vocab, profile)
    if profile.tier is None:
        definition["tier"] = None
        definition["tier_note"] = "量刑指导计算未能确定法定刑幅度，未按幅度筛选"
    dropped: list[str] = []
    mask = base
    # Most specific first; drop circumstances, then tier, while the cohort is too small.
    for used in range(len(criteria), 0, -1):
        mask = base.copy()
        for _name, m, _value in criteria[:used]:
            mask &= m
        dropped = [name for name, _m, _v in criteria[used:]]
        if np.count_nonzero(mask) >= min_n:
            break
    for name, _m, value in criteria:
        if name not in dropped:
            definition[name] = value
    if dropped:
        definition["relaxed"] = dropped
        definition["relaxed_note"] = "同类案件不足{}件，已放宽：{}".format(
            min_n, "、".join({"tier": "法定刑幅度", "circumstances": "关键情节"}[d] for d in dropped)
        )
    rows = np.flatnonzero(mask)
    terms = np.asarray(meta["term"])[rows].astype(np.int64)
    forms = np.asarray(meta["form"])[rows]
    provinces = np.asarray(meta["province"])[rows]
    n = len(rows)
    excluded = {"life": int(np.count_nonzero(terms == CAIL_LIFE)), "death": int(np.count_nonzero(terms == CAIL_DEATH))}
    term_rows = terms >= 0
    stats = CohortStats(definition=definition, n=n, reported=False, excluded=excluded)
    stats.by_province = _by_province(vocab["provinces"], provinces, terms, forms, min_n)
    if n < min_n or np.count_nonzero(term_rows) < min_n:
        stats.reason = (
            f"同类案件仅{n}件（其中有期限刑罚{int(np.count_nonzero(term_rows))}件），少于{min_n}件，不报告统计值"
        )
        return stats
    months = terms[term_rows]
    stats.median_months, stats.q1_months, stats.q3_months = _month_stats(months)
    counts, _ = np.histogram(months, bins=HISTOGRAM_EDGES_MONTHS)
    stats.histogram = [
        HistogramBin(low_months=lo, high_months=hi, count=int(c))
        for lo, hi, c in zip(HISTOGRAM_EDGES_MONTHS[:-1], HISTOGRAM_EDGES_MONTHS[1:], counts, strict=True)
    ]
    stats.share_non_custodial = float(NON_CUSTODIAL_LUT[forms.astype(np.int64) + 1].mean())
    stats.reported = True
    return stats


def _by_province(
    provinces: Vocab, province_ids: np.ndarray, terms: np.ndarray, forms: np.ndarray, min_n: int
) -> list[ProvinceCohort]:
    """Per-province counts, medians and non-custodial shares, from one sort of the cohort rows."""
    out: list[ProvinceCohort] = []
    if len(province_ids) == 0:
        return out
    order = np.argsort(province_ids, kind="stable")
    ids_sorted = province_ids[order]
    terms_sorted = terms[order]
    non_custodial = NON_CUSTODIAL_LUT[forms[order].astype(np.int64) + 1]
    pids, starts, counts = np.unique(ids_sorted, return_index=True, return_counts=True)
    for pid, start, n in zip(pids.tolist(), starts.tolist(), counts.tolist(), strict=True):
        code = provinces.name(int(pid))
        group = terms_sorted[start : start + n]
        months = group[group >= 0]
        reported = n >= min_n and len(months) >= min_n
        out.append(
            ProvinceCohort(
                province=code,
                province_name=BY_CODE[code].name if code in BY_CODE else None,
                n=n,
                median_months=float(np.median(months)) if reported else None,
                share_non_custodial=float(non_custodial[start : start + n].mean()) if reported else None,
                reported=reported,
            )
        )
    out.sort(key=lambda p: (-p.n, p.province or "~"))
    return out
