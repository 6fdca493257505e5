"""Weak positive pairs for contrastive training of the encoder, from past judgments' structure.

Two defendants make a pair when they share the principal charge and statutory tier, their
circumstances mostly agree and their sentences are close. The sentence is used only to *choose*
pairs (these are past judgments); the texts paired are the before-judgment documents, exactly
what a query looks like at serve time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from sentencing.sentence import SentenceForm


@dataclass(frozen=True, slots=True)
class PairItem:
    text: str
    charge: str | None
    tier: str | None
    circumstances: int
    """Bit mask of circumstance codes (retrieval.profile.CIRCUMSTANCE_BITS)."""
    term_months: int
    """CAIL term label: months, 0 without a term, −1 life, −2 death."""
    form: SentenceForm | None


MAX_LOG_GAP = 0.35
"""Sentences within ~40% of each other (the CAIL log distance) count as close."""
MIN_JACCARD = 0.5
CANDIDATES_PER_ANCHOR = 40


def _jaccard(a: int, b: int) -> float:
    union = (a | b).bit_count()
    return 1.0 if union == 0 else (a & b).bit_count() / union


def _custodial(form: SentenceForm | None) -> bool | None:
    if form is None:
        return None
    return form in (SentenceForm.CUSTODY, SentenceForm.LIFE, SentenceForm.DEATH)


def _closeness(a: PairItem, b: PairItem) -> float | None:
    """How alike two sentences and circumstance sets are (higher is closer), None when not a pair."""
    if a.term_months < 0 or b.term_months < 0:
        if a.term_months != b.term_months:
            return None
        gap = 0.0
    else:
        gap = abs(math.log(a.term_months + 1) - math.log(b.term_months + 1))
    if gap > MAX_LOG_GAP or _custodial(a.form) != _custodial(b.form):
        return None
    jac = _jaccard(a.circumstances, b.circumstances)
    if jac < MIN_JACCARD:
        return None
    return jac - gap


def weak_pairs(items: list[PairItem], *, max_pairs: int = 20_000, seed: int = 0) -> list[tuple[str, str]]:
    """(anchor, positive) texts: for each anchor the closest of a sample of its group, if any is close."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        if item.charge is not None and item.text:
            groups[(item.charge, item.tier)].append(i)
    anchors = [i for members in groups.values() if len(members) > 1 for i in members]
    rng.shuffle(anchors)
    pairs: list[tuple[str, str]] = []
    for i in anchors:
        if len(pairs) >= max_pairs:
            break
        a = items[i]
        members = groups[(a.charge, a.tier)]
        sample = rng.choice(members, size=min(len(members), CANDIDATES_PER_ANCHOR), replace=False)
        best, best_score = -1, -math.inf
        for j in sample:
            if j == i or items[j].text == a.text:
                continue
            score = _closeness(a, items[j])
            if score is not None and score > best_score:
                best, best_score = int(j), score
        if best >= 0:
            pairs.append((a.text, items[best].text))
    return pairs
