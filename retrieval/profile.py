"""The structured profile of one defendant that filters, cohorts and why-similar reasons compare.

Charges are named canonically through the charge catalogue (sentencing/charges.py) and the
statutory tier (法定刑幅度) comes from the guideline engine (sentencing/guideline.py); where a
charge is outside the catalogue or the engine cannot place the case, the tier is *unknown* (None),
never guessed.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from sentencing.case import Case, CircumstanceCode, Defendant, Role
from sentencing.charges import default_catalogue
from sentencing.guideline import GuidelineResult
from sentencing.guideline import statutory_tier as guideline_tier

CIRCUMSTANCE_BITS: dict[CircumstanceCode, int] = {code: 1 << i for i, code in enumerate(CircumstanceCode)}

KEY_CIRCUMSTANCES: tuple[CircumstanceCode, ...] = (
    CircumstanceCode.SURRENDER,
    CircumstanceCode.RECIDIVIST,
    CircumstanceCode.ATTEMPT,
    CircumstanceCode.JUVENILE,
    CircumstanceCode.PLEA_AGREEMENT,
)
"""Circumstances that move a sentence most (DOMAIN.md §2); a cohort matches the defendant on them."""


def circumstance_mask(codes: set[CircumstanceCode] | frozenset[CircumstanceCode]) -> int:
    mask = 0
    for code in codes:
        mask |= CIRCUMSTANCE_BITS[code]
    return mask


@functools.lru_cache(maxsize=4096)
def circumstances_of(mask: int) -> frozenset[CircumstanceCode]:
    return frozenset(code for code, bit in CIRCUMSTANCE_BITS.items() if mask & bit)


def canonical_charge(name: str) -> str:
    """The catalogue's name of a charge (``盗窃``); the name as written, minus 罪, when unknown to it."""
    spec = default_catalogue().resolve(name)
    return spec.name if spec is not None else name.strip().removesuffix("罪")


def charge_family(name: str) -> str | None:
    """The catalogue's family of a charge (property, violence, drugs…), None when unknown."""
    spec = default_catalogue().resolve(name)
    return spec.family.value if spec is not None else None


def statutory_tier(
    case: Case, defendant: Defendant, guideline: GuidelineResult | None = None
) -> tuple[str | None, str | None]:
    """(most serious charge, its statutory tier label) from the guideline engine.

    (None, None) when the engine cannot place the case; a charge outside the catalogue has no
    tier of its own (the engine's fallback tier is an estimate, not used to group cases).
    ``guideline`` is the engine's result for this defendant when the caller already has it (the
    service computes it once per defendant for the prediction).
    """
    if guideline is not None:
        found = (guideline.statutory.charge, guideline.statutory.tier_label) if guideline.statutory else None
    else:
        try:
            found = guideline_tier(defendant, case)
        except (ValueError, KeyError, LookupError):
            return None, None
    if found is None or default_catalogue().resolve(found[0]) is None:
        return None, None
    return canonical_charge(found[0]), found[1]


@dataclass(frozen=True, slots=True)
class DefendantProfile:
    """What retrieval compares between two defendants (all known before judgment)."""

    charges: tuple[str, ...]
    tier: str | None
    role: Role
    circumstances: frozenset[CircumstanceCode]
    amount_yuan: float | None
    province: str | None
    court: str | None
    date: dt.date | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def charge(self) -> str | None:
        """The principal charge (the filter and cohort key): the most serious by the guideline, else the first."""
        return self.charges[0] if self.charges else None

    @property
    def key_circumstances(self) -> frozenset[CircumstanceCode]:
        return frozenset(c for c in self.circumstances if c in KEY_CIRCUMSTANCES)


def profile_of(case: Case, defendant: Defendant, guideline: GuidelineResult | None = None) -> DefendantProfile:
    """The defendant's profile; ``guideline``: the engine's result for them, when already computed."""
    principal, tier = statutory_tier(case, defendant, guideline)
    seen: dict[str, None] = {principal: None} if principal else {}
    for c in defendant.charges:
        seen.setdefault(canonical_charge(c.name), None)
    amount = defendant.quantities.amount_yuan.value if defendant.quantities.amount_yuan else None
    province = case.known_province
    return DefendantProfile(
        charges=tuple(seen),
        tier=tier,
        role=defendant.role,
        circumstances=frozenset(defendant.circumstance_codes),
        amount_yuan=amount,
        province=province,
        court=case.court.name if case.court else None,
        date=case.date,
    )
