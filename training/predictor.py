"""Serving a trained model: a case before judgment → one prediction per defendant.

Predicts through onnxruntime (one intra-op thread), all models fused into one tree ensemble;
explanations are decision-path contributions of the native point booster (the Saabas credits of
training.explain, exact, and far cheaper than ``pred_contrib``'s TreeSHAP). A row's credits depend
only on the leaf it reaches in each tree, so they are tabulated per leaf at load, already summed
by explanation group (:class:`LeafContributions`), and the table joins the fused ensemble as more
columns written by the point model's own trees: a vector of group credits in each leaf. One
``run``, one walk of each tree, gives ranges, form probabilities and explanations (timings in
benchmarks/bench_predict.py).
The booster's tree dump is read through LightGBM's C library (:mod:`training.native_booster`),
not the ``lightgbm`` package, which would bring scikit-learn, pandas, scipy and pyarrow into every
server worker. ``predict_case`` turns the graph's outputs into calibrated ranges, form
probabilities and contributions in plain floats (``_predict_rows``, at the confidence served, fixed
at load): the same IEEE operations as the array path ``predict_matrix`` that evaluation uses,
without two dozen numpy calls on a 3 × 3 array.

Within a case, an accessory's range never sits above the range of a principal of the same crime
(从犯应当从轻、减轻处罚): predictions that would are lowered to the principal's and say so in
``warnings``.

A recidivist (累犯) is never given probation (刑法第七十四条), nor is a range whose low end is above
three years (第七十二条): the form classifier learned these as tendencies, the law makes them
rules, so such a row's P(probation) is moved to custody. No range reaches past the longest fixed
term (15 years for one crime, 25 for several), and no defendant gets a probability of 死刑 or
无期徒刑 that none of their charges carries, nor of 死刑 when a juvenile or, unless a death was caused,
75 or older (``LegalLimits``), or when pregnant at trial (:func:`exclude_death`).

A unit defendant (被告单位) is fined and given no term (刑法第三十一条): the law, not a model,
decides its outcome, so its prediction is that outcome (:func:`set_unit_outcome`) and it takes no
part in the role comparison.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import onnx
from pydantic import BaseModel, Field, ValidationError

from features.extract import FeatureExtractor, GuidelineCache
from features.spec import FeatureSpec, group_label
from features.text import TextEstimator, case_text
from sentencing.case import Case, CircumstanceCode, Defendant, Role, trusted
from sentencing.charges import ChargeCatalogue, default_catalogue
from sentencing.guideline import GuidelineResult, life_rests_on_deaths, months_text, undetermined_bounds
from sentencing.liability import responsibility, triable
from sentencing.sentence import TERM_BOUNDS_MONTHS, SentenceForm, SentenceKind
from training.artifacts import FORMAT_VERSION, MANIFEST
from training.calibration import ConformalCalibration
from training.models import (
    CUSTODY_CLASSES,
    FORMS,
    QUANTILE_NAMES,
    SEVERITY_CLASSES,
    LegalLimits,
    combine_form_proba,
    finish_quantiles,
)
from training.native_booster import LeafIndex, NativeBooster, NativeBoosterError
from training.onnx_export import OnnxEnsemble, softmax_rows

if TYPE_CHECKING:
    import lightgbm as lgb


class ModelLoadError(Exception):
    """The model directory is missing, broken or incompatible with this code or rule set."""


class Contribution(BaseModel):
    group: str
    label: str = Field(description="中文说明")
    months: float = Field(description="months this group moves the point estimate (base: group 'base')")


class RangePrediction(BaseModel):
    low_months: float | None
    point_months: float | None
    high_months: float | None
    confidence: float = Field(description="nominal coverage of [low, high], e.g. 0.8")


class DefendantPrediction(BaseModel):
    name: str
    range: RangePrediction
    form: SentenceForm
    form_probabilities: dict[str, float]
    contributions: list[Contribution]
    guideline: GuidelineResult | None
    warnings: list[str] = Field(default_factory=list)


TOP_CONTRIBUTIONS = 10
"""Groups listed by name in an explanation; the rest are summed as 其他因素."""
_AGGRAVATING = frozenset({CircumstanceCode.RECIDIVIST, CircumstanceCode.PRIOR_RECORD})
_LESSER_ROLES = frozenset({Role.ACCESSORY, Role.COERCED})
_FORMS = [SentenceForm(f) for f in FORMS]
_FORM_SOURCES = [(True, CUSTODY_CLASSES.index(f)) if f in CUSTODY_CLASSES else (False, SEVERITY_CLASSES.index(f))
                 for f in FORMS]
"""Where each form's probability comes from: P(term)·P(custody class j), or severity class j."""
_CLASS_COUNTS = {"form_severity": len(SEVERITY_CLASSES), "form_custody": len(CUSTODY_CLASSES)}


_NON_CUSTODIAL = FORMS.index(SentenceForm.NON_CUSTODIAL.value)
UNIT_EXPLANATION = "被告单位依法只判处罚金，不判处刑期（刑法第三十一条）"
NOT_LIABLE_EXPLANATION = "未达对所控罪名负刑事责任的年龄，不判处刑罚（刑法第十七条）"


def statutory_bounds(g: GuidelineResult | None, catalogue: ChargeCatalogue | None = None,
                     defendant: Defendant | None = None) -> tuple[float | None, float | None]:
    """The term bounds the law sets this defendant when the guideline is sure of them, else None each.

    Sure: one charge, its tier selected without a missing or conflicting fact (no widening warning),
    and no other tier of the charge left open by facts that cannot decide it that would lower the
    floor or raise the ceiling (undetermined_bounds: 组织卖淫's open 情节严重 is heavier, so the basic
    tier's floor of five years stays sure). The tier's ceiling binds always (a single crime is
    never sentenced above it); its floor binds unless a statutory mitigation (减轻处罚, 刑法第63条)
    applies. Only fixed-term bounds count: a floor of 拘役 or 管制 is no bound in months worth stating. A
    tier of 无期徒刑或者死刑 with a ground of 减轻 has the floor of the tier below it (第63条).
    """
    if g is None or len(g.charge_results) != 1 or g.statutory is None:
        return None, None
    if any(w.code != "derived_rule" for w in g.warnings):
        return None, None
    catalogue = catalogue or default_catalogue()
    lower, higher = undetermined_bounds(g, catalogue, defendant)
    st = g.statutory
    fixed = SentenceKind.FIXED_TERM
    mitigation = g.charge_results[0].mitigation
    floor = st.min_months if st.min_kind is fixed and not mitigation and not lower else None
    if st.min_kind in (SentenceKind.LIFE, SentenceKind.DEATH) and mitigation and not lower:
        floor = _next_tier_floor(catalogue, st.charge, st.tier_label)
    ceiling = st.max_months if st.max_kind is fixed and not higher else None
    return floor, ceiling


def _next_tier_floor(catalogue: ChargeCatalogue, charge: str, tier_label: str) -> float | None:
    """The fixed-term floor of the tier below a tier of 无期徒刑或者死刑: where 减轻 takes a sentence, and
    no lower (刑法第63条: 在法定量刑幅度的下一个量刑幅度内判处)."""
    spec = catalogue.resolve(charge)
    index = next((i for i, t in enumerate(spec.tiers) if t.label == tier_label), 0) if spec is not None else 0
    if index == 0:
        return None
    below = spec.tiers[index - 1]  # type: ignore[union-attr]
    return float(below.min_months) if below.min_kind is SentenceKind.FIXED_TERM and below.min_months else None


def bounds_warnings(low: float, high: float, g: GuidelineResult | None,
                    catalogue: ChargeCatalogue | None = None, defendant: Defendant | None = None, *,
                    point: float | None = None) -> list[str]:
    """Say where a learned range leaves the statutory tier the guideline is sure of.

    The range is not clamped: on the real dev data a quarter of the defendants whose tier the
    guideline calls certain were sentenced below its floor (facts the text does not state: 情节较轻,
    a mitigation), so a clamp would be wrong as often as it would be right. The prosecutor is told
    instead, with the rule.
    """
    floor, ceiling = statutory_bounds(g, catalogue, defendant)
    out = []
    if floor is not None and g is not None and g.statutory.min_kind in (SentenceKind.LIFE, SentenceKind.DEATH):
        if min(low, point if point is not None else low) < floor - 0.5:
            tier = "无期徒刑或者死刑" if g.statutory.min_kind is SentenceKind.LIFE else "死刑"
            out.append(f"学习模型的区间（{months_text(low)}起）低于{months_text(floor)}：本档法定刑为{tier}，"
                       "减轻处罚只能在下一个量刑幅度内判处（刑法第63条）")
    elif floor is not None and point is not None and point < floor - 0.5:
        out.append(f"学习模型的建议刑期（{months_text(point)}）低于法定刑幅度下限（{months_text(floor)}）："
                   "未认定法定减轻处罚情节的，宣告刑不得低于该下限（刑法第63条），请以法定刑幅度和量刑指导意见测算为准")
    elif floor is not None and low < floor - 0.5:
        out.append(f"学习模型区间下限（{months_text(low)}）低于法定刑幅度下限（{months_text(floor)}）："
                   "未认定法定减轻处罚情节的，宣告刑不得低于该下限（刑法第63条）")
    if ceiling is not None and high > ceiling + 0.5:
        out.append(f"学习模型区间上限（{months_text(high)}）高于法定刑幅度上限（{months_text(ceiling)}）："
                   "一罪的宣告刑不得超过法定最高刑")
    return out


def set_unit_outcome(months: np.ndarray, proba: np.ndarray | list[list[float]], rows: list[int]) -> None:
    """Give the ``rows`` the outcome the law fixes for a unit (被告单位, 刑法第31条) or for a person too
    young to answer for any charge (刑法第17条): no term (0 months) and the non-custodial form with
    certainty, whatever a model learned from persons would say."""
    for i in rows:
        months[i] = 0.0
        proba[i] = [1.0 if j == _NON_CUSTODIAL else 0.0 for j in range(len(FORMS))]


_LIFE = FORMS.index(SentenceForm.LIFE.value)
_DEATH = FORMS.index(SentenceForm.DEATH.value)
_FIXED_TERM_MAX = TERM_BOUNDS_MONTHS[SentenceKind.FIXED_TERM][1]
"""刑法第45条: the longest fixed term for one crime; a tier that begins there has no other term."""
GUIDELINE_LIFE_SHARE = 0.6
"""The guideline's weight in the form probabilities where it says 无期徒刑 and the model does not follow:
more than half, so that life leads whatever the model said."""


def defer_to_guideline_life(proba: np.ndarray | list[list[float]],
                            results: list[GuidelineResult | None]) -> tuple[dict[int, float], list[int]]:
    """Rows whose guideline result is 无期徒刑 while the model's likeliest form is a term.

    Where the tier itself begins at fifteen years (十五年有期徒刑、无期徒刑或者死刑: 50 g or more of
    methamphetamine), its only term is fifteen years and the guideline reaches 无期徒刑 by quantities
    far beyond the threshold, where a model has seen few defendants (3 of the demo corpus's 3,969,
    none of the 686 real ones): there the form probabilities become the guideline's (life) at
    GUIDELINE_LIFE_SHARE and the model's for the rest, and 8 to 18 years for 7 kg of drugs is no
    longer recommended. The model's share is kept, so its death probability still shows.

    Where it rests on deaths (:func:`sentencing.guideline.life_rests_on_deaths`: two killed in a 故意杀人
    or a robbery, with no mitigation to offset the second), the same: courts do impose life or death
    there, and a model that learned from few such defendants (none of the real ones) says a term.

    In a tier that begins lower (诈骗 数额特别巨大: ten years or more, or life), the guideline's 无期徒刑
    rests on a derived amount increment (每五万元增加一个月 reaches it at 5 million yuan), which courts
    do not follow that far: the model's form is kept, and the row is only reported.

    Returns the rows changed, with the model's life + death probability before the change, and the
    rows reported.
    """
    changed: dict[int, float] = {}
    reported: list[int] = []
    keep = 1.0 - GUIDELINE_LIFE_SHARE
    for i, g in enumerate(results):
        if g is None or g.kind is not SentenceKind.LIFE:
            continue
        row = proba[i]
        likeliest = max(range(len(row)), key=row.__getitem__)
        if likeliest in (_LIFE, _DEATH):
            continue
        floor = g.statutory.min_months if g.statutory is not None else None
        if floor is None or (floor < _FIXED_TERM_MAX and not life_rests_on_deaths(g)):
            reported.append(i)
            continue
        changed[i] = float(row[_LIFE] + row[_DEATH])
        for j in range(len(row)):
            row[j] *= keep
        row[_LIFE] += GUIDELINE_LIFE_SHARE
    return changed, reported


def no_term_by_law(proba: np.ndarray | list[list[float]], results: list[GuidelineResult | None]) -> list[int]:
    """Rows whose guideline result is 无期徒刑 or 死刑 because a charge's tier allows nothing lighter
    (无期徒刑或者死刑: 绑架 that kills the hostage, 刑法第239条第2款; 死刑 alone: 劫持航空器 that kills,
    第121条) and no ground of 减轻 (刑法第63条) applies: no term is lawful there, so the probability of
    every term form moves to 无期徒刑 (death keeps the model's), or, for a tier of 死刑 alone, every other
    form's to 死刑 (whose suspension, 死缓, is the court's to weigh; a pregnancy at trial then moves it to
    无期徒刑: :func:`exclude_death`). A model that saw few such defendants says a term, and that term is no
    sentence a court may pass."""
    rows = []
    for i, g in enumerate(results):
        if g is None or g.kind not in (SentenceKind.LIFE, SentenceKind.DEATH):
            continue
        floors = {cr.statutory.min_kind for cr in g.charge_results if cr.kind is cr.statutory.min_kind
                  and cr.kind in (SentenceKind.LIFE, SentenceKind.DEATH)}
        if not floors:
            continue
        to = _DEATH if SentenceKind.DEATH in floors else _LIFE
        row = proba[i]
        kept = (_LIFE, _DEATH) if to == _LIFE else (_DEATH,)
        moved = sum(row[j] for j in range(len(row)) if j not in kept)
        for j in range(len(row)):
            if j not in kept:
                row[j] = 0.0
        row[to] += moved
        rows.append(i)
    return rows


def exclude_death(proba: np.ndarray | list[list[float]], rows: list[int]) -> None:
    """No 死刑 (死缓 included) for the ``rows``: a woman pregnant at trial (刑法第49条). Where death was
    possible life is too, so its probability moves to 无期徒刑."""
    for i in rows:
        row = proba[i]
        row[_LIFE] += row[_DEATH]
        row[_DEATH] = 0.0


class LawfulOutcomes(NamedTuple):
    """What :func:`apply_lawful_outcomes` decided, by row: for the explanations and warnings."""

    units: list[int]
    too_young: list[int]
    deferred: dict[int, float]
    disputed: list[int]
    no_term: list[int]


def apply_lawful_outcomes(case: Case, months: np.ndarray, proba: np.ndarray | list[list[float]],
                          results: list[GuidelineResult | None], catalogue: ChargeCatalogue) -> LawfulOutcomes:
    """What the law, not a model, decides of a case's predictions, in place and in this order: a unit's
    fine only, no punishment for a defendant too young to answer for any charge, no term where the tier
    allows none (:func:`no_term_by_law`), the guideline's
    无期徒刑 where the model has no ground to differ (:func:`defer_to_guideline_life`), and no 死刑 for a
    woman pregnant at trial (:func:`exclude_death`; 75 or older and under eighteen are the feature
    row's, training.models.LegalLimits). ``case`` is the
    one predicted: cut to its triable charges (sentencing.liability.triable). Serving and
    ``sentencing evaluate`` both call this, so they score what is served."""
    units = [i for i, d in enumerate(case.defendants) if d.is_unit]
    too_young = [i for i, d in enumerate(case.defendants) if (r := responsibility(d, catalogue)) and r.none]
    set_unit_outcome(months, proba, units + too_young)
    by_law = no_term_by_law(proba, results)
    deferred, disputed = defer_to_guideline_life(proba, results)
    exclude_death(proba, [i for i, d in enumerate(case.defendants) if d.pregnant])
    return LawfulOutcomes(units, too_young, deferred, disputed, by_law)


def comparable_pairs(case: Case, resolve: Any) -> list[tuple[int, int]]:
    """(accessory, principal) index pairs to which 从犯 ≤ 主犯 applies, whatever the prediction.

    A pair is comparable when both are persons charged with a common crime and the accessory has no
    aggravating circumstance (累犯, 前科) the principal lacks. A unit's fine is no term to compare, nor
    is the no punishment of a principal too young to answer for any charge (刑法第17条): an adult
    accessory is not lowered to it.
    """
    ds = case.defendants
    principals = [i for i, d in enumerate(ds) if d.role is Role.PRINCIPAL and not d.is_unit
                  and not ((r := responsibility(d)) is not None and r.none)]
    if not principals:
        return []
    out: list[tuple[int, int]] = []
    for a, d in enumerate(ds):
        if d.role not in _LESSER_ROLES or d.is_unit:
            continue
        charges_a = {resolve(c.name)[0] or c.name for c in d.charges}
        for p in principals:
            dp = ds[p]
            if not charges_a & {resolve(c.name)[0] or c.name for c in dp.charges}:
                continue
            if (d.circumstance_codes & _AGGRAVATING) - dp.circumstance_codes:
                continue
            out.append((a, p))
    return out


def role_violations(case: Case, months: np.ndarray, resolve: Any,
                    pairs: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """The comparable (accessory, principal) pairs whose ranges break 从犯 ≤ 主犯.

    ``months`` is (n, 3) low/point/high; ``pairs`` the case's :func:`comparable_pairs`, if known.
    """
    if pairs is None:
        pairs = comparable_pairs(case, resolve)
    if not pairs:
        return []
    rows = months.tolist()
    return [(a, p) for a, p in pairs if any(x > y + 1e-9 for x, y in zip(rows[a], rows[p], strict=True))]


def enforce_role_consistency(case: Case, months: np.ndarray, resolve: Any) -> list[int]:
    """Lower each violating accessory's low/point/high to its principal's; returns adjusted indices."""
    comparable = comparable_pairs(case, resolve)
    if not comparable:
        return []
    adjusted: list[int] = []
    for _ in range(len(case.defendants)):  # chains (coerced < accessory < principal) settle in n passes
        pairs = role_violations(case, months, resolve, comparable)
        if not pairs:
            break
        for a, p in pairs:
            months[a] = np.minimum(months[a], months[p])
            adjusted.append(a)
    return sorted(set(adjusted))


CONTRIBUTIONS = "contributions"
"""The fused ensemble's part that sums the point model's leaf credits by group (LeafContributions.onnx_part)."""


def explanation_groups(spec: FeatureSpec) -> tuple[list[str], np.ndarray]:
    """The explanation groups, sorted, and each feature's position among them."""
    group_ids = sorted(set(spec.groups))
    return group_ids, np.array([group_ids.index(g) for g in spec.groups], dtype=np.int64)


def _contribution(group: str, label: str, months: float) -> Contribution:
    return trusted(Contribution, {"group": group, "label": label, "months": months})


class LeafContributions:
    """Decision-path (Saabas) contributions of a booster, tabulated per leaf and summed by group.

    Walking from a tree's root to one of its leaves credits each split's change of node value to
    the split feature; the credits of a row depend only on the leaf reached. So ``table[leaf]`` holds
    them per explanation group, and a row's contributions are a sum over its leaves — the same
    numbers as ``training.explain.PathExplainer(booster).contributions(X) @ group_matrix`` (to
    rounding; tests/test_predict_fast.py checks it). Serving sums them in ONNX (:meth:`onnx_part`);
    :meth:`grouped` sums them in float64 through the native booster, as the reference.
    """

    def __init__(self, booster: NativeBooster, feature_groups: np.ndarray, n_groups: int) -> None:
        model = booster.dump_model()
        trees = model["tree_info"]
        if model.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("LeafContributions explains single-output boosters only")
        rows: list[np.ndarray] = []
        offsets: list[int] = []
        roots: list[float] = []
        for tree in trees:
            root = tree["tree_structure"]
            roots.append(float(root.get("internal_value", root.get("leaf_value", 0.0))))
            leaves: dict[int, np.ndarray] = {}
            stack: list[tuple[dict[str, Any], dict[int, float]]] = [(root, {})]
            while stack:
                node, credit = stack.pop()
                if "leaf_value" in node:
                    vec = np.zeros(n_groups)
                    for f, delta in credit.items():
                        vec[feature_groups[f]] += delta
                    leaves[int(node.get("leaf_index", 0))] = vec
                    continue
                if node.get("decision_type", "<=") != "<=":
                    raise ValueError("LeafContributions handles numerical splits only (no categorical features)")
                f = int(node["split_feature"])
                for child in (node["left_child"], node["right_child"]):
                    value = child["leaf_value"] if "leaf_value" in child else child["internal_value"]
                    step = dict(credit)
                    step[f] = step.get(f, 0.0) + (float(value) - float(node["internal_value"]))
                    stack.append((child, step))
            offsets.append(len(rows))
            rows.extend(leaves[i] for i in range(len(leaves)))
        self.booster = booster
        self.n_groups = n_groups
        self.table = np.array(rows).reshape(len(rows), n_groups)
        self.offsets = np.array(offsets, dtype=np.int64)
        self._offsets_f = self.offsets.astype(np.float64)
        self._trees = [tree["tree_structure"] for tree in trees]
        self.bias = float(np.array(roots).sum())
        self._leaves: LeafIndex | None = None

    def grouped(self, X: np.ndarray) -> np.ndarray:
        """(n, n_groups) contributions of float64 rows; add ``bias`` for the raw prediction."""
        if self._leaves is None:
            self._leaves = self.booster.leaf_index(len(self._trees))
        return self.table.take(self._leaves(X, self._offsets_f), axis=0).sum(axis=1)

    def onnx_part(self, point_onnx: bytes) -> bytes:
        """An ONNX graph of the booster's trees whose leaves hold their group credits: (n, n_groups).

        ``point_onnx`` is this booster converted to ONNX (onnxmltools' TreeEnsembleRegressor). Its
        nodes are reused as they are, so a row reaches the leaves it reaches in the point model's
        own graph, and the fused ensemble walks those trees once for both; only the leaf values
        change, from one number to a vector.
        Raises ValueError when that graph's trees are not the dump's, split for split.
        """
        model = onnx.load_from_string(point_onnx)
        ensembles = [n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor"]
        if len(ensembles) != 1:
            raise ValueError(f"expected one TreeEnsembleRegressor in the point model, found {len(ensembles)}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in ensembles[0].attribute}
        where = {key: k for k, key in enumerate(zip(attrs["nodes_treeids"], attrs["nodes_nodeids"], strict=True))}
        modes, features, values = attrs["nodes_modes"], attrs["nodes_featureids"], attrs["nodes_values"]
        trues, falses = attrs["nodes_truenodeids"], attrs["nodes_falsenodeids"]
        tree_ids: list[int] = []
        node_ids: list[int] = []
        group_ids: list[int] = []
        weights: list[float] = []
        for t, root in enumerate(self._trees):
            stack: list[tuple[dict[str, Any], int]] = [(root, 0)]
            while stack:
                node, node_id = stack.pop()
                k = where.get((t, node_id))
                if k is None:
                    raise ValueError(f"tree {t}: the ONNX graph has no node {node_id}")
                if "leaf_value" in node:
                    if modes[k] != b"LEAF":
                        raise ValueError(f"tree {t}, node {node_id}: a leaf in LightGBM, a split in ONNX")
                    credits = self.table[self.offsets[t] + int(node.get("leaf_index", 0))]
                    nonzero = np.flatnonzero(credits).tolist() or [0]  # every leaf keeps an entry
                    tree_ids += [t] * len(nonzero)
                    node_ids += [node_id] * len(nonzero)
                    group_ids += nonzero
                    weights += credits[nonzero].tolist()
                    continue
                with np.errstate(over="ignore"):  # LightGBM writes ±1e300 for "all values", ONNX ±inf
                    same = (modes[k] == b"BRANCH_LEQ" and features[k] == int(node["split_feature"])
                            and np.float32(values[k]) == np.float32(node["threshold"]))
                if not same:
                    raise ValueError(f"tree {t}, node {node_id}: the ONNX split differs from LightGBM's")
                stack.append((node["left_child"], trues[k]))  # x <= threshold: left, the ONNX true branch
                stack.append((node["right_child"], falses[k]))
        node_attrs = {name: value for name, value in attrs.items() if name.startswith("nodes_")}
        ensemble = onnx.helper.make_node(
            "TreeEnsembleRegressor", [model.graph.input[0].name], ["contributions"], domain="ai.onnx.ml",
            n_targets=self.n_groups, post_transform="NONE", aggregate_function="SUM", target_treeids=tree_ids,
            target_nodeids=node_ids, target_ids=group_ids, target_weights=weights, **node_attrs,
        )
        output = onnx.helper.make_tensor_value_info("contributions", onnx.TensorProto.FLOAT, [None, self.n_groups])
        graph = onnx.helper.make_graph([ensemble], "contributions", [model.graph.input[0]], [output])
        part = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
        part.ir_version = model.ir_version
        return part.SerializeToString()


class RangePredictor:
    """A loaded model directory; ``predict_case`` is the serving call."""

    def __init__(self, model_dir: Path, manifest: dict[str, Any], spec: FeatureSpec,
                 calibration: ConformalCalibration, catalogue: ChargeCatalogue,
                 onnx_models: OnnxEnsemble, models: dict[str, dict[str, Any]],
                 explainer: LeafContributions, text: TextEstimator | None = None, *,
                 guideline_cache_size: int = 0) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.version: str = manifest["version"]
        self.ruleset_version: str = manifest["ruleset_version"]
        self.data_hash: str = manifest["data_hash"]
        self.spec = spec
        self.calibration = calibration
        self.confidence = calibration.confidence
        self.catalogue = catalogue
        self.extractor = FeatureExtractor(spec, catalogue)
        self.guidelines = GuidelineCache(catalogue, guideline_cache_size)
        self.onnx = onnx_models
        self._models = models
        self._init = np.array([models[f"term_{q}"]["init"] for q in QUANTILE_NAMES])
        rng = manifest["range"]
        self._residual = rng["target"] == "residual"
        self._offset_column = int(rng["offset_column"])
        self._offset_fallback = float(rng["offset_fallback"])
        self._guideline_weight = float(rng.get("guideline_weight", 0.0))  # models written before it: 0
        self._contrib = explainer.booster
        self.text = text
        self._text_column = spec.index("text_estimate")
        self._limits = LegalLimits(spec, catalogue)
        self._group_ids, _ = explanation_groups(spec)
        self._group_labels = [group_label(g) for g in self._group_ids]
        self._explainer = explainer
        self._guideline_group = self._group_ids.index("guideline")
        # The serving path (_predict_rows, contributions) works on plain floats with these, fixed at load.
        self._margins = calibration.margins()
        layout = onnx_models.layout
        self._term_columns = [layout[f"term_{q}"].start for q in QUANTILE_NAMES]
        self._contribution_columns = layout[CONTRIBUTIONS]
        self._form_slots = {name: (layout.get(name), list(models[name]["present"]))
                            for name in ("form_severity", "form_custody")}
        bias = self._explainer.bias + self._init[1]
        if self._residual:
            bias = bias + self._offset_fallback
        self._base = float(np.expm1(max(bias, 0.0)))

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, model_dir: Path, catalogue: ChargeCatalogue | None = None, *,
             guideline_cache_size: int | None = None) -> RangePredictor:
        """``guideline_cache_size``: defendants whose guideline results are kept (default: Settings)."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelLoadError(f"model directory not found: {model_dir}")
        try:
            manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelLoadError(
                f"{model_dir}: no {MANIFEST}; not a model directory (run `sentencing train`)"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelLoadError(f"{model_dir / MANIFEST}: not valid JSON ({e})") from None
        for key in ("format_version", "version", "ruleset_version", "data_hash", "models", "range"):
            if key not in manifest:
                raise ModelLoadError(f"{model_dir / MANIFEST}: field {key!r} is missing")
        if not isinstance(manifest["range"], dict):
            raise ModelLoadError(f"{model_dir / MANIFEST}: field 'range' must be an object")
        weight = manifest["range"].get("guideline_weight", 0.0)  # models written before it: 0
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0.0 <= weight <= 1.0:
            raise ModelLoadError(f"{model_dir / MANIFEST}: range.guideline_weight must be a number from 0 to 1, "
                                 f"got {weight!r}")
        if manifest["format_version"] != FORMAT_VERSION:
            raise ModelLoadError(
                f"{model_dir}: model format {manifest['format_version']!r}, this code reads {FORMAT_VERSION!r}; retrain"
            )
        catalogue = catalogue or default_catalogue()
        if manifest["ruleset_version"] != catalogue.version:
            raise ModelLoadError(
                f"{model_dir}: trained with rule set {manifest['ruleset_version']!r}, the loaded catalogue is "
                f"{catalogue.version!r}; retrain the model for this rule set"
            )
        try:
            spec = FeatureSpec.model_validate_json((model_dir / "feature_spec.json").read_text(encoding="utf-8"))
            spec.check_compatible()
            calibration = ConformalCalibration.model_validate_json(
                (model_dir / "calibration.json").read_text(encoding="utf-8")
            )
            calibration.margin()
        except FileNotFoundError as e:
            raise ModelLoadError(f"{model_dir}: missing file {Path(e.filename).name}") from None
        except (ValidationError, ValueError) as e:
            raise ModelLoadError(f"{model_dir}: feature spec or calibration invalid: {e}") from None
        models: dict[str, dict[str, Any]] = manifest["models"]
        parts: dict[str, bytes] = {}
        for name in (*(f"term_{q}" for q in QUANTILE_NAMES), "form_severity", "form_custody"):
            entry = models.get(name)
            if entry is None:
                raise ModelLoadError(f"{model_dir}: manifest lists no model {name!r}")
            if "onnx" not in entry:
                if entry.get("kind") == "multiclass" and len(entry.get("present", [])) == 1:
                    continue  # a single class in training: a constant, no booster
                raise ModelLoadError(f"{model_dir}: model {name!r} has no ONNX file")
            try:
                data = (model_dir / entry["onnx"]).read_bytes()
                onnx.load_from_string(data)
            except FileNotFoundError:
                raise ModelLoadError(f"{model_dir}: model file {entry['onnx']} is missing") from None
            except Exception as e:  # protobuf raises its own DecodeError for corrupt files
                raise ModelLoadError(f"{model_dir}: {entry['onnx']} is not a valid ONNX model ({e})") from None
            parts[name] = data
        try:
            contrib = NativeBooster(model_dir / models["term_point"]["native"])
        except (NativeBoosterError, KeyError) as e:
            raise ModelLoadError(f"{model_dir}: native point model unreadable ({e})") from None
        if contrib.n_features != spec.n_features:
            raise ModelLoadError(f"{model_dir}: native point model has {contrib.n_features} features, "
                                 f"spec has {spec.n_features}")
        group_ids, feature_groups = explanation_groups(spec)
        try:
            explainer = LeafContributions(contrib, feature_groups, len(group_ids))
            parts[CONTRIBUTIONS] = explainer.onnx_part(parts["term_point"])
        except (NativeBoosterError, ValueError) as e:  # e.g. categorical splits: no leaf table
            raise ModelLoadError(f"{model_dir}: native point model unusable for explanations ({e})") from None
        try:
            ensemble = OnnxEnsemble(parts)
        except Exception as e:  # onnxruntime raises its own exception types for invalid graphs
            raise ModelLoadError(f"{model_dir}: the ONNX models do not fuse into one ensemble ({e})") from None
        if ensemble.n_features != spec.n_features:
            raise ModelLoadError(f"{model_dir}: ONNX models expect {ensemble.n_features} features, "
                                 f"spec has {spec.n_features}")
        text: TextEstimator | None = None
        if manifest.get("text_model"):
            try:
                text = TextEstimator.load(model_dir)
            except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as e:
                raise ModelLoadError(f"{model_dir}: text model unreadable ({e})") from None
        if guideline_cache_size is None:
            from sentencing.config import load_settings

            guideline_cache_size = load_settings().guideline_cache_size
        return cls(model_dir, manifest, spec, calibration, catalogue, ensemble, models, explainer, text,
                   guideline_cache_size=guideline_cache_size)

    def lightgbm_booster(self) -> lgb.Booster:
        """A new ``lightgbm.Booster`` read from the native point model file (it must still exist).

        Tests and benchmarks compare the served explanations with LightGBM's own (``pred_leaf``,
        ``pred_contrib``, :class:`training.explain.PathExplainer`). Imports the ``lightgbm`` package,
        and with it scikit-learn, pandas, scipy and pyarrow: never call it on the serving path.
        """
        import lightgbm as lgb

        return lgb.Booster(model_file=str(self._contrib.model_file))

    # ------------------------------------------------------------------ predicting

    def features(self, case: Case) -> tuple[np.ndarray, list[Any], list[str]]:
        results, warnings = self.guidelines.results(case)
        X = self.extractor.case_matrix(case, results)
        if self.text is not None:
            X[:, self._text_column] = self.text.predict_one(case_text(case.facts, case.reasoning))
        return X, results, warnings

    def predict_matrix(self, X: np.ndarray, confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3) months low/point/high calibrated to ``confidence`` (default: the served one), (n, 5) P(form)."""
        out = self.onnx.predict(X.astype(np.float32))
        raw = np.column_stack([out[f"term_{q}"] for q in QUANTILE_NAMES])
        if self._residual:
            offset = X[:, self._offset_column].copy()
            offset[~np.isfinite(offset)] = self._offset_fallback
        else:
            offset = np.zeros(len(X))
        guide = X[:, self._offset_column]
        months = self.calibration.to_months(
            finish_quantiles(raw + self._init, offset, guide, self._guideline_weight), confidence,
            self._calibration_groups(X))
        severity = self._proba("form_severity", out, len(X))
        custody = self._proba("form_custody", out, len(X))
        proba = combine_form_proba(severity, custody)
        self._limits.apply(months, proba, X, self.confidence if confidence is None else confidence)
        return months, proba

    def _predict_rows(self, X: np.ndarray) -> tuple[np.ndarray, list[list[float]], list[list[float]]]:
        """:meth:`predict_matrix` at the served confidence for a request's few rows: (n, 3) months, P(form)
        rows, and each row's credits by explanation group (log scale, the guideline's pull on the
        range included in the guideline group's) for :meth:`_explain_rows`.

        The same IEEE operations in the same order as the array version (tests/test_predict_rows.py
        checks equality), on plain floats: for 3 rows, two dozen numpy calls cost more than the
        arithmetic they do.
        """
        rows = self.onnx.run(np.ascontiguousarray(X, dtype=np.float32)).tolist()
        c_low, c_point, c_high = self._term_columns
        init_low, init_point, init_high = self._init.tolist()
        n = len(rows)
        if self._residual:
            fallback = self._offset_fallback
            offsets = [v if math.isfinite(v) else fallback for v in X[:, self._offset_column].tolist()]
        else:
            offsets = [0.0] * n
        calibrate, margins = self.calibration.calibrate_logs, self._margins
        groups = self._calibration_groups(X) or [None] * n
        weight = self._guideline_weight
        guides = X[:, self._offset_column].tolist() if weight else offsets
        credits = self._contribution_columns
        guideline = self._guideline_group
        logs = []
        explained = []
        for row, o, g, group in zip(rows, offsets, guides, groups, strict=True):
            q = sorted(((row[c_low] + init_low) + o, (row[c_point] + init_point) + o, (row[c_high] + init_high) + o))
            q = [v if v > 0.0 or v != v else 0.0 for v in q]  # np.maximum(q, 0)
            credit = row[credits]
            if weight and math.isfinite(g):  # draw_toward_guideline, its pull credited to the guideline
                kept, pulled = 1.0 - weight, weight * g
                point = q[1]
                q = [kept * v + pulled for v in q]
                credit[guideline] += q[1] - point
            logs.append(calibrate(*q, margins.get(group, margins[None])))
            explained.append(credit)
        severity = self._proba_rows("form_severity", rows)
        custody = self._proba_rows("form_custody", rows)
        proba = []
        for sev, cus in zip(severity, custody, strict=True):  # combine_form_proba
            term = sev[0]
            proba.append([term * cus[j] if of_term else sev[j] for of_term, j in _FORM_SOURCES])
        months = np.expm1(np.array(logs, dtype=np.float64).reshape(n, 3))
        self._limits.apply(months, proba, X, self.confidence)
        return months, proba, explained

    def _calibration_groups(self, X: np.ndarray) -> list[str | None] | None:
        """Each row's charge family when the calibration has margins by family (else None: one margin)."""
        return self.spec.row_families(X) if self.calibration.group_scores else None

    def _proba_rows(self, name: str, rows: list[list[float]]) -> list[list[float]]:
        columns, present = self._form_slots[name]
        width = _CLASS_COUNTS[name]
        if columns is None:
            return [[1.0 if c == present[0] else 0.0 for c in range(width)] for _ in rows]
        out = []
        for values in softmax_rows([row[columns] for row in rows]):
            row = [0.0] * width
            for c, v in zip(present, values, strict=True):
                row[c] = v
            out.append(row)
        return out

    def _proba(self, name: str, out: dict[str, np.ndarray], n: int) -> np.ndarray:
        present = self._models[name]["present"]
        proba = np.zeros((n, _CLASS_COUNTS[name]))
        if name in out:
            proba[:, present] = out[name]
        else:
            proba[:, present[0]] = 1.0
        return proba

    def contributions(self, X: np.ndarray, point_months: np.ndarray) -> list[list[Contribution]]:
        """Per-group contributions in months, summing with the 'base' entry to the point estimate."""
        credits = self._predict_rows(X)[2]
        return self._explain_rows(X, credits, np.asarray(point_months, dtype=np.float64).tolist())

    def _explain_rows(self, X: np.ndarray, credits: list[list[float]], points: list[float]) -> list[list[Contribution]]:
        """Each row's group credits scaled into months so that they and 'base' add up to its point;
        the largest TOP_CONTRIBUTIONS by name, the rest as 其他因素, entries under 0.05 months left out.

        Plain floats: for a request's few rows and a few dozen groups, numpy's per-call overhead
        costs more than the arithmetic. ``credits`` rows are modified.
        """
        n_groups = len(self._group_ids)
        base = self._base
        base_months = round(base, 2)
        offsets = X[:, self._offset_column].tolist() if self._residual else [math.nan] * len(points)
        guideline, fallback = self._guideline_group, self._offset_fallback
        ids, labels = self._group_ids, self._group_labels
        out: list[list[Contribution]] = []
        for row, point, offset in zip(credits, points, offsets, strict=True):
            if math.isfinite(offset):  # the residual's offset is the guideline's own contribution
                row[guideline] += offset - fallback
            total = math.fsum(row)
            scale = (point - base) / total if abs(total) > 1e-9 else 0.0
            months = [v * scale for v in row]
            # largest magnitude first, ties in group order (a stable sort, reversed, keeps ties' order)
            order = sorted(range(n_groups), key=[abs(v) for v in months].__getitem__, reverse=True)
            items = [_contribution("base", "训练样本基准", base_months)]
            for j in order[:TOP_CONTRIBUTIONS]:
                v = months[j]
                if abs(v) >= 0.05:
                    items.append(_contribution(ids[j], labels[j], round(v, 2)))
            rest = math.fsum(map(months.__getitem__, order[TOP_CONTRIBUTIONS:]))
            if abs(rest) >= 0.05:
                items.append(_contribution("other", "其他因素", round(rest, 2)))
            out.append(items)
        return out

    def predict_case(self, case: Case, *, explain: bool = True) -> list[DefendantPrediction]:
        """One prediction per defendant, in order. Reads only what is known before judgment."""
        if not case.defendants:
            return []
        case = triable(case, self.catalogue)  # 刑法第17条: only the charges each defendant's age answers for
        X, results, warnings = self.features(case)
        months, proba, credits = self._predict_rows(X)
        units, too_young, deferred, disputed, by_law = apply_lawful_outcomes(case, months, proba, results,
                                                                             self.catalogue)
        adjusted = enforce_role_consistency(case, months, self.extractor.resolve)
        explanations = (self._explain_rows(X, credits, months[:, 1].tolist()) if explain
                        else [[] for _ in case.defendants])
        for i in units:
            explanations[i] = [_contribution("unit", UNIT_EXPLANATION, 0.0)] if explain else []
        for i in too_young:
            explanations[i] = [_contribution("age", NOT_LIABLE_EXPLANATION, 0.0)] if explain else []
        resolve = self.extractor.resolve
        confidence = self.confidence
        rounded = [[round(v, 1) for v in row] for row in months.tolist()]
        out: list[DefendantPrediction] = []
        for i, (d, probs_row) in enumerate(zip(case.defendants, proba, strict=True)):
            probs = dict(zip(FORMS, probs_row, strict=True))
            form = _FORMS[max(range(len(probs_row)), key=probs_row.__getitem__)]  # argmax: the first maximum
            prefix = f"{d.name}:"
            w = [m for m in warnings if m.startswith(prefix)]
            if i in adjusted:
                w.append("从犯/胁从犯的幅度已调整为不高于同案主犯")
            if i in disputed:
                w.append("量刑指导意见测算结果为无期徒刑，学习模型建议有期徒刑：本档的测算依推定的增加刑罚量（数额、次数等）"
                         "得出无期徒刑，法院通常不按此推至无期徒刑，请结合案情核对刑种")
            if i in by_law and results[i] is not None and results[i].kind is SentenceKind.DEATH:
                w.append("本档法定刑为死刑，未认定法定减轻处罚情节（刑法第63条）：不得判处有期徒刑或者无期徒刑，"
                         "刑罚种类按法定刑确定；是否缓期二年执行须依案情判断")
            elif i in by_law:
                w.append("本档法定刑为无期徒刑或者死刑，未认定法定减轻处罚情节（刑法第63条）：不得判处有期徒刑，"
                         "刑罚种类按法定刑确定；是否判处死刑须依案情判断")
            if i in deferred:
                w.append(f"量刑指导意见测算结果为无期徒刑，学习模型给出无期徒刑、死刑的概率合计仅{deferred[i]:.0%}"
                         f"（训练数据中此类被告人很少）：刑罚种类按指导意见建议，概率中指导意见占"
                         f"{GUIDELINE_LIFE_SHARE:.0%}；是否判处死刑须依案情判断")
            for c in d.charges if not d.is_unit else ():
                if resolve(c.name)[0] is None:
                    w.append(f"罪名“{c.name}”不在规则库中：仅按学习模型预测，幅度可信度低")
            g = results[i]
            if g is not None:
                w.extend(x.message for x in g.warnings)
            if form is SentenceForm.NON_CUSTODIAL and i not in units and i not in too_young:
                w.append(f"学习模型认为最可能的刑罚为非监禁刑（免予刑事处罚、单处罚金等，概率{probs_row[_NON_CUSTODIAL]:.0%}）："
                         "所示幅度是判处有期徒刑或拘役时的刑期，请结合案情核对刑种")
            if form in (SentenceForm.LIFE, SentenceForm.DEATH):
                rng = trusted(RangePrediction, {"low_months": None, "point_months": None, "high_months": None,
                                                "confidence": confidence})
            else:
                lo, pt, hi = rounded[i]
                rng = trusted(RangePrediction, {"low_months": lo, "point_months": pt, "high_months": hi,
                                                "confidence": confidence})
                if not d.is_unit:
                    w.extend(bounds_warnings(lo, hi, g, self.catalogue, d, point=pt))
            out.append(trusted(DefendantPrediction, {
                "name": d.name, "range": rng, "form": form, "form_probabilities": probs,
                "contributions": explanations[i], "guideline": g, "warnings": w,
            }))
        return out


def cail_prediction(pred: DefendantPrediction) -> float:
    """The prediction as a CAIL term label: −2 death, −1 life, else the point in months."""
    if pred.form is SentenceForm.DEATH:
        return -2
    if pred.form is SentenceForm.LIFE:
        return -1
    return float(pred.range.point_months) if pred.range.point_months is not None else math.nan
