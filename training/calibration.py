"""Conformalised quantile regression (CQR, Romano et al. 2019) for the term range.

The quantile boosters' [low, high] is a guess at an 80% range; on unseen defendants it can cover
far more or far less. CQR measures, on defendants the boosters did not train on, how far each
real term falls outside its predicted range (negative when inside):

    E_i = max(low_i − y_i, y_i − high_i)        (on the ln(1 + months) scale)

and widens (or narrows) every range by the ⌈(1−α)(n+1)⌉-th smallest E. The sorted scores are kept,
so the range for any other confidence level, and a calibration curve, come from the same data.

One margin for every defendant covers 80% on average and far from it charge by charge: on the
real judgments, 59–65% of 渎职 and fraud defendants against 87–91% of drug, sexual and traffic
ones (benchmarks/eval_models.py). So the scores are also kept per group (the charge family), and a
group with at least :data:`MIN_GROUP` held-out defendants gets its own margin (Mondrian conformal
prediction: coverage holds within each group); smaller groups, and defendants of no or several
families, get the margin of all.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

MIN_GROUP = 40
"""Held-out defendants a group needs for its own margin (the 80% margin is then its ~33rd score)."""


class CalibrationError(ValueError):
    pass


class ConformalCalibration(BaseModel):
    """Sorted conformity scores from held-out defendants, and the nominal confidence served."""

    confidence: float = Field(gt=0.0, lt=1.0)
    scores: list[float] = Field(description="sorted conformity scores on the ln(1 + months) scale")
    method: str = "cqr"
    source: str = Field(default="out-of-fold", description="how the held-out predictions were made")
    group_scores: dict[str, list[float]] = Field(
        default_factory=dict,
        description="sorted conformity scores of each group (charge family) with at least MIN_GROUP of them",
    )

    @classmethod
    def fit(cls, low: np.ndarray, high: np.ndarray, y: np.ndarray, *, confidence: float,
            source: str = "out-of-fold", groups: Sequence[str | None] | None = None) -> ConformalCalibration:
        """``groups``: each held-out defendant's group (None: none), for the groups' own margins."""
        low, high, y = (np.asarray(a, dtype=np.float64) for a in (low, high, y))
        if not (len(low) == len(high) == len(y)):
            raise CalibrationError("calibration: low, high and y differ in length")
        if groups is not None and len(groups) != len(y):
            raise CalibrationError(f"calibration: {len(groups)} groups for {len(y)} held-out defendants")
        if len(y) < 10:
            raise CalibrationError(f"calibration needs at least 10 held-out defendants with a term, got {len(y)}")
        if not np.all(np.isfinite(low) & np.isfinite(high) & np.isfinite(y)):
            raise CalibrationError("calibration: non-finite predictions or targets")
        scores = np.maximum(low - y, y - high)
        by_group: dict[str, list[float]] = defaultdict(list)
        for group, score in zip(groups or [], scores.tolist(), strict=False):
            if group is not None:
                by_group[group].append(score)
        return cls(confidence=confidence, scores=np.sort(scores).tolist(), source=source,
                   group_scores={g: sorted(v) for g, v in sorted(by_group.items()) if len(v) >= MIN_GROUP})

    @property
    def n(self) -> int:
        return len(self.scores)

    def margin(self, confidence: float | None = None, group: str | None = None) -> float:
        """How much to widen each side (ln scale) for a confidence level (default: the served one),
        in a group (its own scores if it has them, else all)."""
        c = self.confidence if confidence is None else confidence
        if not 0.0 < c < 1.0:
            raise CalibrationError(f"confidence must lie strictly between 0 and 1, got {c}")
        scores = self.group_scores.get(group, self.scores) if group is not None else self.scores
        k = math.ceil(c * (len(scores) + 1))
        if k > len(scores):
            return float(scores[-1])  # too few scores for this level: the widest seen
        return float(scores[k - 1])

    def margins(self, confidence: float | None = None) -> dict[str | None, float]:
        """The margin of each group with its own scores, and of all (key None)."""
        out: dict[str | None, float] = {g: self.margin(confidence, g) for g in self.group_scores}
        out[None] = self.margin(confidence)
        return out

    def row_margins(self, groups: Sequence[str | None] | None, n: int,
                    confidence: float | None = None) -> np.ndarray:
        """(n,) each row's margin; without ``groups``, the margin of all."""
        margins = self.margins(confidence)
        if groups is None:
            return np.full(n, margins[None])
        if len(groups) != n:
            raise CalibrationError(f"calibration: {len(groups)} groups for {n} rows")
        return np.array([margins.get(g, margins[None]) for g in groups], dtype=np.float64)

    def to_months(self, logs: np.ndarray, confidence: float | None = None,
                  groups: Sequence[str | None] | None = None) -> np.ndarray:
        """Sorted (n, 3) ln(1 + months) quantiles → calibrated (n, 3) months low ≤ point ≤ high;
        ``groups``: each row's group, for its margin."""
        logs = np.array(logs, dtype=np.float64)
        margin = self.row_margins(groups, len(logs), confidence)
        logs[:, 0] = np.maximum(logs[:, 0] - margin, 0.0)
        logs[:, 2] = logs[:, 2] + margin
        crossed = logs[:, 0] > logs[:, 2]  # a negative margin can close a narrow range entirely
        logs[crossed, 0] = logs[crossed, 2] = logs[crossed, 1]
        logs[:, 1] = np.clip(logs[:, 1], logs[:, 0], logs[:, 2])
        return np.expm1(logs)

    def calibrate_logs(self, low: float, point: float, high: float, margin: float) -> tuple[float, float, float]:
        """One row of :meth:`to_months` before ``expm1``, in plain floats (a request's few rows).

        Same IEEE operations as the array version, so the same numbers: serving calls this with the
        served ``margin`` computed once, instead of a dozen numpy calls on a 3 × 3 array.
        """
        lo = low - margin
        lo = lo if lo > 0.0 or lo != lo else 0.0  # np.maximum(lo, 0.0): NaN propagates, a tie gives 0.0
        hi = high + margin
        if lo > hi:  # a negative margin can close a narrow range entirely
            lo = hi = point
        pt = point if point >= lo or point != point else lo  # np.clip(point, lo, hi): a tie keeps point
        pt = pt if pt <= hi or pt != pt else hi
        return lo, pt, hi

    def apply(self, low: np.ndarray, high: np.ndarray, confidence: float | None = None,
              groups: Sequence[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = self.row_margins(groups, len(low), confidence)
        return np.maximum(np.asarray(low) - q, 0.0), np.asarray(high) + q
