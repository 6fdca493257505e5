"""The learned models, scikit-learn style: quantile ranges of the term, and the form of the sentence.

Both wrap plain LightGBM boosters (``lgb.train``) so that the same trees can be saved as text,
exported to ONNX and explained with ``pred_contrib``; the sklearn wrapper adds nothing here.

The term is modelled on the log scale, ``ln(1 + months)``, either directly (``target="log"``) or as
the residual over the guideline engine's point (``target="residual"``: the guideline is the prior,
the trees learn how real courts depart from it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from sentencing.metrics import cail_score
from sentencing.sentence import (
    COMBINED_CAP_MONTHS,
    PROBATION_MAX_MONTHS,
    TERM_BOUNDS_MONTHS,
    SentenceForm,
    SentenceKind,
)

if TYPE_CHECKING:  # serving imports this module: the lightgbm package would bring sklearn, pandas…
    import lightgbm as lgb

    from features.spec import FeatureSpec
    from sentencing.charges import ChargeCatalogue

Target = Literal["log", "residual"]
QUANTILE_NAMES = ("low", "point", "high")
SEVERITY_CLASSES = ("term", SentenceForm.NON_CUSTODIAL.value, SentenceForm.LIFE.value, SentenceForm.DEATH.value)
"""Stage 1 of the form: a term of 有期徒刑/拘役 (suspended or not), none, life or death. ``"term"`` first."""
CUSTODY_CLASSES = (SentenceForm.PROBATION.value, SentenceForm.CUSTODY.value)
"""Stage 2, given a term: suspended (缓刑) or served."""
FORMS = tuple(f.value for f in SentenceForm)
TERM_UNKNOWN_FORM = "term"
"""Label of a defendant with a term whose form (custody/probation) the source does not tell (CAIL)."""


@dataclass
class BoosterParams:
    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 15
    max_depth: int = 5
    min_child_samples: int = 10
    feature_fraction: float = 0.9
    bagging_fraction: float = 1.0
    lambda_l2: float = 1.0
    num_threads: int = 1
    seed: int = 0

    def lgb(self) -> dict[str, object]:
        return {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1.0 else 0,
            "lambda_l2": self.lambda_l2,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }


@dataclass
class RangeModel:
    """Quantile regression of ln(1 + months): low / point / high (e.g. the 10th, 50th, 90th percentiles).

    ``offset_column`` is the feature holding ln(1 + guideline point); with ``target="residual"``
    the boosters learn ``y - offset`` (rows without a guideline use the training median instead).
    """

    quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)
    target: Target = "log"
    offset_column: int | None = None
    monotone: Sequence[int] | None = None
    params: BoosterParams = field(default_factory=BoosterParams)
    boosters_: dict[str, lgb.Booster] = field(default_factory=dict, init=False)
    init_: dict[str, float] = field(default_factory=dict, init=False)
    offset_fallback_: float = field(default=0.0, init=False)
    guideline_weight_: float = field(default=0.0, init=False)
    """Set after fitting, from held-out predictions (:func:`choose_guideline_weight`)."""

    def offset(self, X: np.ndarray) -> np.ndarray:
        if self.target == "log":
            return np.zeros(len(X))
        if self.offset_column is None:
            raise ValueError("target='residual' needs offset_column (the guideline point feature)")
        off = X[:, self.offset_column].astype(np.float64, copy=True)
        off[~np.isfinite(off)] = self.offset_fallback_
        return off

    def fit(self, X: np.ndarray, y_log: np.ndarray, sample_weight: np.ndarray | None = None,
            init_from: RangeModel | None = None) -> RangeModel:
        """Fit the three quantile boosters; ``init_from`` continues a (pre-trained) model's trees."""
        import lightgbm as lgb

        X = _float_matrix(X)
        y_log = np.asarray(y_log, dtype=np.float64)
        if len(X) != len(y_log) or len(X) == 0:
            raise ValueError(f"RangeModel.fit: {len(X)} rows of features, {len(y_log)} targets")
        if not np.all(np.isfinite(y_log)):
            raise ValueError("RangeModel.fit: targets must be finite ln(1 + months)")
        if init_from is not None and init_from.target != self.target:
            raise ValueError("RangeModel.fit: init_from was trained with another target")
        self.offset_fallback_ = init_from.offset_fallback_ if init_from else float(np.median(y_log))
        residual = y_log - self.offset(X)
        base = self.params.lgb()
        if self.monotone is not None:
            base["monotone_constraints"] = list(self.monotone)
            base["monotone_constraints_method"] = "intermediate"
        # One binned dataset for the three quantiles: only the starting score differs.
        data = lgb.Dataset(X, residual, weight=sample_weight, free_raw_data=False,
                           params={"max_bin": 63, "verbosity": -1})
        for name, alpha in zip(QUANTILE_NAMES, self.quantiles, strict=True):
            if init_from is not None:
                init_booster = init_from.boosters_[name]
                self.init_[name] = init_from.init_[name]
                start = init_booster.predict(X, num_threads=self.params.num_threads) + self.init_[name]
            else:
                init_booster = None
                self.init_[name] = float(np.quantile(residual, alpha))
                start = np.full(len(X), self.init_[name])
            data.set_init_score(start)
            booster = lgb.train(
                {**base, "objective": _pinball(alpha)}, data, num_boost_round=self.params.n_estimators,
                init_model=init_booster, keep_training_booster=False,
            )
            self.boosters_[name] = as_regression_booster(booster)
        return self

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """(n, 3) boosters' outputs (residuals, or logs with target='log'), native LightGBM."""
        return np.column_stack([
            self.boosters_[name].predict(X, num_threads=1) + self.init_[name] for name in QUANTILE_NAMES
        ])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n, 3) ln(1 + months): low ≤ point ≤ high (quantile crossing is removed by sorting), drawn
        toward the guideline by ``guideline_weight_``."""
        X = np.asarray(X, dtype=np.float64)
        guide = X[:, self.offset_column] if self.offset_column is not None else None
        return finish_quantiles(self.predict_raw(X), self.offset(X), guide, self.guideline_weight_)


def _pinball(alpha: float) -> Callable[[np.ndarray, lgb.Dataset], tuple[np.ndarray, np.ndarray]]:
    """Gradient of the pinball (quantile) loss with unit hessian.

    LightGBM's own ``quantile`` objective refuses monotone constraints: it re-estimates each
    leaf after growing the tree, which can break them. Plain gradient steps keep them.
    """

    def objective(preds: np.ndarray, data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        y = data.get_label()
        grad = np.where(y < preds, 1.0 - alpha, -alpha)
        return grad, np.ones_like(grad)

    return objective


def as_regression_booster(booster: lgb.Booster) -> lgb.Booster:
    """The same trees, declared ``objective=regression`` (identity output), from its text.

    A booster trained with a Python objective is saved as ``custom``, which neither a reload nor
    onnxmltools can interpret; the output transform of a quantile model is the identity.
    """
    import lightgbm as lgb

    text = booster.model_to_string()
    lines = text.split("\n")
    if not any(line.startswith("objective=") for line in lines):
        at = next(i for i, line in enumerate(lines) if line.startswith("max_feature_idx="))
        lines.insert(at + 1, "objective=regression")
    text = "\n".join(lines).replace("[objective: custom]", "[objective: regression]")
    return lgb.Booster(model_str=text)


def _float_matrix(X: np.ndarray) -> np.ndarray:
    """Features as float32 or float64 without copying either (large training sets are float32)."""
    X = np.asarray(X)
    return X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)


def finish_quantiles(raw: np.ndarray, offset: np.ndarray, guide: np.ndarray | None = None,
                     guideline_weight: float = 0.0) -> np.ndarray:
    """Raw booster outputs + offset → sorted, non-negative ln(1 + months), drawn toward the guideline
    (:func:`draw_toward_guideline`) when ``guideline_weight`` is not 0."""
    out = np.maximum(np.sort(raw + offset[:, None], axis=1), 0.0)
    if guideline_weight and guide is not None:
        out = draw_toward_guideline(out, guide, guideline_weight)
    return out


GUIDELINE_WEIGHTS = tuple(w / 10 for w in range(11))
"""The weights :func:`choose_guideline_weight` tries."""


def draw_toward_guideline(q: np.ndarray, guide: np.ndarray, weight: float) -> np.ndarray:
    """(n, 3) ln(1 + months) low/point/high, each replaced by its weighted mean with ``guide``
    (ln(1 + the guideline engine's point); rows where it is NaN stay as they are).

    With a few hundred real judgments the boosters alone score no better than the guideline engine
    on the CAIL log score, and the two err differently: a weighted mean of the two points beats
    both (benchmarks/eval_models.py). Each bound is a mean of two functions that the law's
    direction constrains alike (more money never lowers either), so it keeps that direction; the
    range narrows by ``1 - weight``, and the conformal calibration, fitted on the drawn ranges,
    widens it as far as held-out errors require.
    """
    drawn = (1.0 - weight) * q + weight * guide[:, None]
    return np.where(np.isfinite(guide)[:, None], drawn, q)


def choose_guideline_weight(q: np.ndarray, guide: np.ndarray, y_log: np.ndarray,
                            weights: Sequence[float] = GUIDELINE_WEIGHTS) -> tuple[float, dict[float, float]]:
    """The weight of :func:`draw_toward_guideline` whose points score best on held-out rows, and the
    CAIL log score of each weight tried; ties go to the smaller weight (the model's own point).

    ``q``: (n, 3) out-of-fold ln(1 + months) low/point/high; ``y_log``: the true ln(1 + months).
    """
    true = np.rint(np.expm1(y_log)).astype(int).tolist()
    scores = {float(w): cail_score(true, np.expm1(draw_toward_guideline(q, guide, w)[:, 1]).tolist())
              for w in weights}
    best = max(scores, key=lambda w: (round(scores[w], 9), -w))
    return best, scores


@dataclass
class _Classifier:
    """A multiclass booster over the classes present in training (a constant when only one is)."""

    classes: tuple[str, ...]
    present_: list[int] = field(default_factory=list, init=False)
    booster_: lgb.Booster | None = field(default=None, init=False)

    def fit(self, X: np.ndarray, labels: Sequence[str], params: BoosterParams,
            sample_weight: np.ndarray | None = None) -> _Classifier:
        import lightgbm as lgb

        idx = np.array([self.classes.index(lab) for lab in labels], dtype=np.int64)
        self.present_ = sorted(set(idx.tolist()))
        if len(self.present_) >= 2:
            remap = {c: i for i, c in enumerate(self.present_)}
            y = np.array([remap[i] for i in idx], dtype=np.float64)
            data = lgb.Dataset(X, y, weight=sample_weight, params={"max_bin": 63, "verbosity": -1})
            p = {**params.lgb(), "objective": "multiclass", "num_class": len(self.present_)}
            self.booster_ = lgb.train(p, data, num_boost_round=max(params.n_estimators // 2, 20))
        return self

    def expand(self, present_proba: np.ndarray) -> np.ndarray:
        """Probabilities over present classes → over all ``classes`` (absent ones get 0)."""
        out = np.zeros((len(present_proba), len(self.classes)))
        out[:, self.present_] = present_proba
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.booster_ is None:
            out = np.zeros((len(X), len(self.classes)))
            out[:, self.present_[0] if self.present_ else 0] = 1.0
            return out
        return self.expand(np.asarray(self.booster_.predict(X, num_threads=1)).reshape(len(X), -1))


@dataclass
class FormClassifier:
    """P(form) over :class:`SentenceForm`, in two stages that respect what each source tells.

    Severity (a term / non-custodial / life / death) learns from every defendant; custody
    (probation / custody, given a term) only from defendants whose form is known: CAIL-style labels
    give months but not whether the term was suspended, so they are labelled ``"term"`` and only
    feed stage 1. Their 0 (no term) is a non-custodial sentence, which stage 1 learns with the
    rest. It once was a custody class: a source that tells only its non-custodial defendants' form
    then taught stage 2 that a defendant like theirs (no court, no province) is non-custodial, and a
    model trained on the real data gave 302 of 337 JuDGE defendants a non-custodial form once their
    court and province were left out (custody accuracy 97% → 13%).
    """

    params: BoosterParams = field(default_factory=lambda: BoosterParams(n_estimators=200))
    severity_: _Classifier = field(default_factory=lambda: _Classifier(SEVERITY_CLASSES), init=False)
    custody_: _Classifier = field(default_factory=lambda: _Classifier(CUSTODY_CLASSES), init=False)

    def fit(self, X: np.ndarray, labels: Sequence[str], sample_weight: np.ndarray | None = None) -> FormClassifier:
        labels = list(labels)
        allowed = {*FORMS, TERM_UNKNOWN_FORM}
        bad = sorted({lab for lab in labels if lab not in allowed})
        if bad:
            raise ValueError(f"FormClassifier.fit: unknown form labels {bad}; expected {sorted(allowed)}")
        X = _float_matrix(X)
        severity = [lab if lab in SEVERITY_CLASSES else "term" for lab in labels]
        self.severity_.fit(X, severity, self.params, sample_weight)
        known = np.array([lab in CUSTODY_CLASSES for lab in labels])
        if not known.any():
            raise ValueError("FormClassifier.fit: no defendant whose term is known to be suspended or not "
                             "(all CAIL-style labels)")
        w = sample_weight[known] if sample_weight is not None else None
        self.custody_.fit(X[known], [lab for lab, k in zip(labels, known, strict=True) if k], self.params, w)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, 5) probabilities in :class:`SentenceForm` order."""
        X = np.asarray(X, dtype=np.float64)
        return combine_form_proba(self.severity_.predict_proba(X), self.custody_.predict_proba(X))

    def predict(self, X: np.ndarray) -> list[SentenceForm]:
        return [SentenceForm(FORMS[i]) for i in self.predict_proba(X).argmax(axis=1)]


_PROBATION = FORMS.index(SentenceForm.PROBATION.value)
_CUSTODY = FORMS.index(SentenceForm.CUSTODY.value)
_ONE_CRIME_CAP = float(TERM_BOUNDS_MONTHS[SentenceKind.FIXED_TERM][1])
_COMBINED_CAP = float(COMBINED_CAP_MONTHS[SentenceKind.FIXED_TERM])
_PROBATION_LIMIT = PROBATION_MAX_MONTHS + 0.5
_LIFE_FORM = FORMS.index(SentenceForm.LIFE.value)
_DEATH_FORM = FORMS.index(SentenceForm.DEATH.value)


class LegalLimits:
    """What the law makes impossible whatever the facts, applied to a model's outputs in place.

    - No range passes the longest fixed term: 15 years for one crime (刑法第45条), 25 for several
      (第69条). Beyond that a sentence is 无期徒刑, a form, not months.
    - No probation (缓刑) for a recidivist (累犯, 第74条), nor for a range whose low end is above
      three years (第72条: no sentence in it can be suspended); and no more of it than the range
      leaves to terms of three years or less (:func:`share_at_most`): a model trained on the real
      data, where the suspended-or-not stage learns from 337 JuDGE defendants, mostly of light
      crimes, gave 组织卖淫 (five years or more) and 故意伤害致人死亡 a probation form with points of
      four and six years.
    - No 死刑 for a defendant none of whose charges carries it, who was under eighteen at the time
      of the crime, or who is 75 or older (第49条; the code 已满七十五周岁 is read as of the crime, so
      at trial too) unless a death was caused, the only case its exception (以特别残忍手段致人死亡)
      covers; no 无期徒刑 where every charge stops at a fixed term. A charge outside the catalogue
      (``charge_其他``) may reach death.

    A classifier learns these as tendencies (a recidivist kept 3–5% probation, a theft 0.8% death);
    a removed probability moves to the severest form still allowed. Read from the feature row
    alone, so that every prediction path (served rows, ``predict_matrix``, the native twin in
    evaluation) applies them alike, in one pass over the few columns they need.
    """

    def __init__(self, spec: FeatureSpec, catalogue: ChargeCatalogue | None) -> None:
        """``catalogue``: the spec's rule set, whose tiers say the severest penalty of each charge; None
        (another rule set than the one at hand) leaves out only the limits that need it, on 死刑 and
        无期徒刑 by charge."""
        names = [*spec.charges, "其他"]
        first = spec.index(f"charge_{names[0]}")
        if [spec.index(f"charge_{n}") for n in names] != list(range(first, first + len(names))):
            raise ValueError("the charge columns of the feature spec are not consecutive")
        self.charges = slice(first, first + len(names))
        # Each charge column's severest penalty as indicator columns (term, life, death): the row's
        # severest is read with one product instead of a scan of every charge column. A row none of
        # whose columns is set is unknown: every form stays possible.
        severest = np.zeros((len(names), 3))
        for k, name in enumerate(names):
            if catalogue is None:
                continue
            charge = catalogue.resolve(name) if name != "其他" else None
            if charge is None or charge.reaches_death:
                severest[k, 2] = 1.0
            else:
                severest[k, 1 if any(t.max_kind is SentenceKind.LIFE for t in charge.tiers) else 0] = 1.0
        self.severest = severest
        self.columns = [spec.index(n) for n in ("charges_count", "circ_recidivist", "circ_juvenile",
                                                "circ_elderly", "deaths")]

    def apply(self, months: np.ndarray, proba: np.ndarray | list[list[float]], X: np.ndarray,
              confidence: float) -> None:
        """Cap ``months`` ((n, 3) low/point/high, a range of nominal ``confidence``) and move the
        impossible forms' ``proba`` (in place)."""
        tail = (1.0 - confidence) / 2  # the quantile level of the range's low end
        reached = (X[:, self.charges] == 1.0) @ self.severest
        for i, ((count, recidivist, juvenile, elderly, deaths), (term, life, death)) in enumerate(
                zip(X[:, self.columns].tolist(), reached.tolist(), strict=True)):
            cap = _ONE_CRIME_CAP if count <= 1 else _COMBINED_CAP
            if months[i, 2] > cap:
                np.minimum(months[i], cap, out=months[i])
            row = proba[i]
            low, point, high = months[i].tolist()
            if recidivist == 1.0 or low > _PROBATION_LIMIT:
                row[_CUSTODY] += row[_PROBATION]
                row[_PROBATION] = 0.0
            elif high > _PROBATION_LIMIT:
                allowed = share_at_most(_PROBATION_LIMIT, low, point, high, tail) * (row[_PROBATION] + row[_CUSTODY])
                if row[_PROBATION] > allowed:
                    row[_CUSTODY] += row[_PROBATION] - allowed
                    row[_PROBATION] = allowed
            known = term + life + death > 0
            may_die = (death > 0 or not known) and juvenile != 1.0 and (elderly != 1.0 or deaths > 0)
            may_life = life > 0 or death > 0 or not known
            if not may_die:
                row[_LIFE_FORM if may_life else _CUSTODY] += row[_DEATH_FORM]
                row[_DEATH_FORM] = 0.0
            if not may_life:
                row[_CUSTODY] += row[_LIFE_FORM]
                row[_LIFE_FORM] = 0.0


def share_at_most(limit: float, low: float, point: float, high: float, tail: float) -> float:
    """The share of a range's defendants sentenced to ``limit`` months or less, read from its quantiles:
    ``low``, ``point`` and ``high`` at ``tail``, 0.5 and 1 − ``tail``, linear in ln(1 + months) between
    them; 0 below the low end, 1 from the high end up (both tails are left to the rules around it)."""
    if limit >= high:
        return 1.0
    if limit < low:
        return 0.0
    x = math.log1p(limit)
    if limit >= point:
        a, b, qa, qb = math.log1p(point), math.log1p(high), 0.5, 1.0 - tail
    else:
        a, b, qa, qb = math.log1p(low), math.log1p(point), tail, 0.5
    return qa + (qb - qa) * (x - a) / (b - a) if b > a else qb


def combine_form_proba(severity: np.ndarray, custody: np.ndarray) -> np.ndarray:
    """P(form) = P(term)·P(probation or custody | term) for the two forms of a term; P(non-custodial), P(life),
    P(death) from stage 1."""
    term = severity[:, 0:1]
    out = np.empty((len(severity), len(FORMS)))
    for j, name in enumerate(FORMS):
        if name in CUSTODY_CLASSES:
            out[:, j] = term[:, 0] * custody[:, CUSTODY_CLASSES.index(name)]
        else:
            out[:, j] = severity[:, SEVERITY_CLASSES.index(name)]
    return out
