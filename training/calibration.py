"""Conformalised quantile regression (CQR, Romano et al. 2019) for the term range.

The quantile boosters' [low, high] is a guess at an 80% range; on unseen defendants it can cover
far more or far less. CQR measures, on defendants the boosters did not train on, how far each
real term falls outside its predicted range (negative when inside):

    E_i = max(low_i − y_i, y_i − high_i)        (on the ln(1 + months) scale)

and widens (or narrows) every range by the ⌈(1−α)(n+1)⌉-th smallest E. The sorted scores are kept,
so the range for any other confidence level, and a calibration curve, come from the same data.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field


class CalibrationError(ValueError):
    pass


class ConformalCalibration(BaseModel):
    """Sorted conformity scores from held-out defendants, and the nominal confidence served."""

    confidence: float = Field(gt=0.0, lt=1.0)
    scores: list[float] = Field(description="sorted conformity scores on the ln(1 + months) scale")
    method: str = "cqr"
    source: str = Field(default="out-of-fold", description="how the held-out predictions were made")

    @classmethod
    def fit(cls, low: np.ndarray, high: np.ndarray, y: np.ndarray, *, confidence: float,
            source: str = "out-of-fold") -> ConformalCalibration:
        low, high, y = (np.asarray(a, dtype=np.float64) for a in (low, high, y))
        if not (len(low) == len(high) == len(y)):
            raise CalibrationError("calibration: low, high and y differ in length")
        if len(y) < 10:
            raise CalibrationError(f"calibration needs at least 10 held-out defendants with a term, got {len(y)}")
        if not np.all(np.isfinite(low) & np.isfinite(high) & np.isfinite(y)):
            raise CalibrationError("calibration: non-finite predictions or targets")
        scores = np.sort(np.maximum(low - y, y - high))
        return cls(confidence=confidence, scores=scores.tolist(), source=source)

    @property
    def n(self) -> int:
        return len(self.scores)

    def margin(self, confidence: float | None = None) -> float:
        """How much to widen each side (ln scale) for a confidence level (default: the served one)."""
        c = self.confidence if confidence is None else confidence
        if not 0.0 < c < 1.0:
            raise CalibrationError(f"confidence must lie strictly between 0 and 1, got {c}")
        k = math.ceil(c * (self.n + 1))
        if k > self.n:
            return float(self.scores[-1])  # too few scores for this level: the widest seen
        return float(self.scores[k - 1])

    def to_months(self, logs: np.ndarray, confidence: float | None = None) -> np.ndarray:
        """Sorted (n, 3) ln(1 + months) quantiles → calibrated (n, 3) months low ≤ point ≤ high."""
        margin = self.margin(confidence)
        logs = np.array(logs, dtype=np.float64)
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

    def apply(self, low: np.ndarray, high: np.ndarray,
              confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = self.margin(confidence)
        return np.maximum(np.asarray(low) - q, 0.0), np.asarray(high) + q
