"""How a sentencing predictor is scored (DOMAIN.md §5); every evaluation calls these."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sentencing.sentence import CAIL_DEATH, CAIL_LIFE

_CAIL_STEPS = ((0.2, 1.0), (0.4, 0.8), (0.6, 0.6), (0.8, 0.4), (1.0, 0.2))


def cail_term_score(true_months: int, predicted_months: float) -> float:
    """CAIL2018 term-task score of one defendant (0..1): log distance, death/life exact only."""
    if true_months in (CAIL_DEATH, CAIL_LIFE) or predicted_months in (CAIL_DEATH, CAIL_LIFE):
        return 1.0 if true_months == predicted_months else 0.0
    v = abs(math.log(true_months + 1) - math.log(max(predicted_months, 0.0) + 1))
    for bound, score in _CAIL_STEPS:
        if v <= bound:
            return score
    return 0.0


def cail_score(true_months: Sequence[int], predicted_months: Sequence[float]) -> float:
    """Mean CAIL term score ×100 over defendants."""
    if len(true_months) != len(predicted_months):
        raise ValueError("true and predicted differ in length")
    if not true_months:
        return float("nan")
    return 100.0 * sum(map(cail_term_score, true_months, predicted_months)) / len(true_months)


def mae_months(true_months: Sequence[int], predicted_months: Sequence[float]) -> float:
    """Mean absolute error over defendants with a term (life and death left out)."""
    pairs = [(t, p) for t, p in zip(true_months, predicted_months, strict=True) if t >= 0 and p >= 0]
    return sum(abs(t - p) for t, p in pairs) / len(pairs) if pairs else float("nan")


def within_share(true_months: Sequence[int], predicted_months: Sequence[float], tolerance: float = 0.25) -> float:
    """Share of term defendants predicted within ±tolerance of the real term."""
    pairs = [(t, p) for t, p in zip(true_months, predicted_months, strict=True) if t >= 0 and p >= 0]
    if not pairs:
        return float("nan")
    return sum(abs(t - p) <= tolerance * t for t, p in pairs) / len(pairs)


def interval_coverage(true_months: Sequence[int], lows: Sequence[float], highs: Sequence[float]) -> float:
    """Share of term defendants whose real term lies inside [low, high]."""
    rows = [(t, lo, hi) for t, lo, hi in zip(true_months, lows, highs, strict=True) if t >= 0]
    return sum(lo <= t <= hi for t, lo, hi in rows) / len(rows) if rows else float("nan")


def mean_width(lows: Sequence[float], highs: Sequence[float]) -> float:
    widths = [hi - lo for lo, hi in zip(lows, highs, strict=True)]
    return sum(widths) / len(widths) if widths else float("nan")
