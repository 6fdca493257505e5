"""A text estimate of the term: TF-IDF character n-grams + ridge regression on ln(1 + months).

The CAIL2018 official baseline reads the facts this way; here its estimate is one feature among
the structured ones (stacking), fitted out-of-fold during training so that the boosters never see
an estimate made from their own labels. It captures what the extractors miss (the manner of the
crime, the victim, the wording of the 本院认为 findings).

Fitting uses scikit-learn; predicting re-implements its transform in plain Python over the saved
weights (a linear model of an L2-normalised sublinear TF-IDF vector), so a model directory holds
arrays and a vocabulary, no pickle.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_SPACES = re.compile(r"\s\s+")


def char_ngrams(text: str, n_max: int = 3) -> Counter[str]:
    """Character 1…n_max-grams exactly as scikit-learn's ``analyzer="char"`` (lowercased)."""
    text = _SPACES.sub(" ", text.lower())
    grams: Counter[str] = Counter()
    length = len(text)
    for n in range(1, n_max + 1):
        grams.update(text[i:i + n] for i in range(length - n + 1))
    return grams


class TextEstimator:
    """ln(1 + months) from the case text; ``predict`` is the serving path, ``fit`` the training one."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, coef: np.ndarray, intercept: float,
                 n_max: int = 3) -> None:
        self.vocabulary = vocabulary
        self.idf = np.asarray(idf, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.n_max = n_max
        # Per n-gram: (idf, idf·coef) for the normalised dot product.
        self._weights = {g: (float(self.idf[i]), float(self.idf[i] * self.coef[i])) for g, i in vocabulary.items()}

    @classmethod
    def fit(cls, texts: Sequence[str], y_log: np.ndarray, *, max_features: int = 50_000, min_df: int = 2,
            alpha: float = 1.0, n_max: int = 3) -> TextEstimator:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge

        if len(texts) != len(y_log) or not len(texts):
            raise ValueError(f"TextEstimator.fit: {len(texts)} texts, {len(y_log)} targets")
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, n_max), max_features=max_features,
                              sublinear_tf=True, min_df=min(min_df, len(texts)))
        X = vec.fit_transform(list(texts))
        ridge = Ridge(alpha=alpha).fit(X, np.asarray(y_log, dtype=np.float64))
        vocabulary = {g: int(i) for g, i in vec.vocabulary_.items()}
        return cls(vocabulary, vec.idf_, ridge.coef_, float(ridge.intercept_), n_max)

    def predict_one(self, text: str) -> float:
        dot = 0.0
        norm = 0.0
        weights = self._weights
        for gram, count in char_ngrams(text, self.n_max).items():
            w = weights.get(gram)
            if w is None:
                continue
            tf = 1.0 + math.log(count)
            norm += (tf * w[0]) ** 2
            dot += tf * w[1]
        return self.intercept + (dot / math.sqrt(norm) if norm > 0 else 0.0)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.predict_one(t) for t in texts], dtype=np.float64)

    def save(self, directory: Path) -> None:
        grams = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        np.savez(directory / "text_weights.npz", idf=self.idf, coef=self.coef, intercept=np.array(self.intercept))
        (directory / "text_vocabulary.json").write_text(
            json.dumps({"n_max": self.n_max, "grams": grams}, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> TextEstimator:
        meta = json.loads((directory / "text_vocabulary.json").read_text(encoding="utf-8"))
        with np.load(directory / "text_weights.npz") as w:
            idf, coef, intercept = w["idf"], w["coef"], float(w["intercept"])
        grams = meta["grams"]
        if not (len(grams) == len(idf) == len(coef)):
            raise ValueError("text model: vocabulary and weights differ in length")
        return cls({g: i for i, g in enumerate(grams)}, idf, coef, intercept, int(meta["n_max"]))


def case_text(facts: str, reasoning: str) -> str:
    """The text the estimate reads: the facts and the court's findings, as known before judgment."""
    return facts + "\n" + reasoning
