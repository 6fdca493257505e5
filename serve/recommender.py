"""Per-defendant recommendations: the guideline, the range model and similar cases, composed.

A :class:`Bundle` is everything one model version serves with (range predictor + retrieval index);
:class:`BundleHolder` keeps the one in service and swaps it atomically on reload: the new bundle is
loaded and validated completely first, then one reference changes. A request reads the reference
once, so requests in flight finish on the bundle they started with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.profile import profile_of
from sentencing.case import (
    Aggravation,
    Case,
    Charge,
    Circumstance,
    Court,
    Defendant,
    Injury,
    Measure,
    Quantities,
    Role,
    looks_like_unit,
    trusted,
)
from sentencing.guideline import _STAGE_LABELS as STAGE_LABELS
from sentencing.parsing import extract_defendant_facts
from sentencing.sentence import SentenceForm, format_sentence
from serve.defendant_warnings import defendant_warnings
from serve.masking import mask_name, mask_text
from serve.schemas import (
    CaseDefendantView,
    CaseInput,
    CaseView,
    ChargeQuantitiesOut,
    CohortOut,
    ContributionOut,
    DecisionRequest,
    DefendantInput,
    DefendantRecommendation,
    ExtractedAggravation,
    ExtractedCircumstance,
    ExtractedFacts,
    FormOut,
    GuidelineOut,
    GuidelineStepOut,
    HistogramBinOut,
    ProvinceStat,
    QuantitiesInput,
    RangeOut,
    RecommendationResponse,
    SimilarCaseOut,
    SimilarCasesResponse,
    StatedTier,
    StatutoryOut,
)

if TYPE_CHECKING:
    from retrieval.search import SimilarCase
    from sentencing.charges import ChargeCatalogue


class BundleError(Exception):
    """A model or index directory that cannot serve; the message says why."""


class CohortCache:
    """Cohorts as the API returns them, by cohort key, for one loaded index (a new bundle starts a new cache).

    Over the whole country (province scope ``any``) a cohort is a function of the principal charge,
    the statutory tier and the key circumstances only (retrieval.cohort), a small set of keys, while
    computing one scans every indexed row. The index does not change while it serves. A query
    whose own case is indexed gets a cohort without that case's rows: it is computed apart and not
    cached, so that the cache holds only whole cohorts.
    """

    def __init__(self, index: Any, max_entries: int = 4096) -> None:
        self.index = index
        self.max_entries = max_entries
        self._entries: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def get(self, case: Case, defendant: Defendant, guideline: Any = None) -> CohortOut:
        """``guideline``: the engine's result for the defendant, when the caller already has it."""
        if self.index.indexed(case.id):
            return cohort_out(self.index.cohort(case, defendant, province_scope="any", guideline=guideline))
        profile = profile_of(case, defendant, guideline)
        key = (profile.charge, profile.tier, profile.key_circumstances)
        hit = self._entries.get(key)
        if hit is not None:
            return hit
        stats = cohort_out(self.index.cohort(case, defendant, province_scope="any", guideline=guideline))
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = stats
        return stats


@dataclass(frozen=True)
class Bundle:
    predictor: Any
    """``training.predictor.RangePredictor``."""
    index: Any
    """``retrieval.search.RetrievalIndex``."""
    model_dir: Path
    index_dir: Path
    model_version: str
    ruleset_version: str
    index_size: int | None
    loaded_at: dt.datetime
    cohorts: CohortCache


def probe_case() -> Case:
    """A small theft case every bundle must answer before it may serve."""
    return Case(
        id="probe",
        facts="2023年5月，被告人张三在某超市内趁人不备，窃取他人手机一部，价值人民币4000元。案发后张三主动投案，如实供述。",
        province="JS",
        defendants=[Defendant(name="张三", charges=[Charge(name="盗窃")])],
    )


def load_bundle(model_dir: Path, index_dir: Path) -> Bundle:
    """Load and validate a bundle; raises :class:`BundleError` naming what is wrong."""
    from retrieval.shards import open_index
    from training.predictor import ModelLoadError, RangePredictor

    model_dir, index_dir = Path(model_dir), Path(index_dir)
    if not model_dir.is_dir():
        raise BundleError(f"model_dir {str(model_dir)!r} is not a directory")
    if not index_dir.is_dir():
        raise BundleError(f"index_dir {str(index_dir)!r} is not a directory")
    try:
        predictor = RangePredictor.load(model_dir)
    except ModelLoadError as exc:
        raise BundleError(f"model_dir {str(model_dir)!r}: {exc}") from exc
    except Exception as exc:  # a corrupt file can raise anything from a third-party loader
        raise BundleError(f"model_dir {str(model_dir)!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
    try:
        index = open_index(index_dir)  # one bundle, or the shards the distributed pipeline builds
    except Exception as exc:
        raise BundleError(f"index_dir {str(index_dir)!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
    bundle = Bundle(
        predictor=predictor,
        index=index,
        model_dir=model_dir,
        index_dir=index_dir,
        model_version=str(predictor.version),
        ruleset_version=str(predictor.ruleset_version),
        index_size=_index_size(index),
        loaded_at=dt.datetime.now(dt.UTC),
        cohorts=CohortCache(index),
    )
    _validate(bundle)
    return bundle


def _index_size(index: Any) -> int | None:
    for attr in ("size", "ntotal", "__len__"):
        value = getattr(index, attr, None)
        if callable(value):
            value = value()
        if isinstance(value, int):
            return value
    return None


def _validate(bundle: Bundle) -> None:
    """Answer the probe case end to end; anything non-finite or disordered refuses the bundle."""
    case = probe_case()
    try:
        predictions = bundle.predictor.predict_case(case)
        similar = bundle.index.search(case, case.defendants[0], k=3)
        # the search and the cohort: besides checking they answer, they build the index's one-off
        # lookup tables (rows by charge, the filters' per-charge and per-province bitmaps, rows by
        # case id; ~0.7 s at a million rows) before the first request
        bundle.index.cohort(case, case.defendants[0], province_scope="any")
    except Exception as exc:
        raise BundleError(f"the bundle failed on the probe case: {type(exc).__name__}: {exc}") from exc
    if len(predictions) != 1:
        raise BundleError(f"the model returned {len(predictions)} predictions for a 1-defendant probe case")
    r = predictions[0].range
    values = (r.low_months, r.point_months, r.high_months)
    if not all(math.isfinite(v) for v in values) or not r.low_months <= r.point_months <= r.high_months:
        raise BundleError(f"the model's probe range is not a finite ordered range: {values}")
    if not similar:
        raise BundleError("the retrieval index returned no similar case for the probe case")


class BundleHolder:
    """The bundle in service. Reads are a plain attribute read; reloads are serialised by a lock."""

    def __init__(self, bundle: Bundle | None = None) -> None:
        self._bundle = bundle
        self._reload_lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def bundle(self) -> Bundle | None:
        return self._bundle

    def reload(self, model_dir: Path, index_dir: Path) -> tuple[Bundle, Bundle | None]:
        """Load, validate, then swap; returns (new, previous). On error the old bundle keeps serving."""
        with self._reload_lock:
            new = load_bundle(model_dir, index_dir)
            previous, self._bundle = self._bundle, new
            self.last_error = None
            return new, previous


# --------------------------------------------------------------------------- composition


def input_hash(case_input: CaseInput) -> str:
    return hashlib.sha256(case_input.model_dump_json().encode()).hexdigest()


def _quantities(q: QuantitiesInput) -> Quantities:
    return Quantities(
        amount_yuan=Measure(value=q.amount_yuan) if q.amount_yuan is not None else None,
        drug_grams={k: Measure(value=v) for k, v in q.drug_grams.items()},
        injuries=[Injury(grade=i.grade, count=i.count) for i in q.injuries],
        occurrences=Measure(value=q.occurrences) if q.occurrences is not None else None,
        deaths=Measure(value=q.deaths) if q.deaths is not None else None,
        blood_alcohol_mg_per_100ml=(
            Measure(value=q.blood_alcohol_mg_per_100ml) if q.blood_alcohol_mg_per_100ml is not None else None
        ),
    )


def _defendant(d: DefendantInput) -> Defendant:
    return Defendant(
        name=d.name,
        is_unit=d.unit if d.unit is not None else looks_like_unit(d.name),
        charges=[Charge(name=c, tier=(d.tiers or {}).get(c),
                        quantities=_quantities(d.charge_quantities[c]) if c in (d.charge_quantities or {}) else None)
                 for c in d.charges],
        role=d.role or Role.SOLE,
        circumstances=[Circumstance(code=c) for c in d.circumstances or []],
        aggravations=[Aggravation(code=a) for a in dict.fromkeys(d.aggravations or [])],
        quantities=_quantities(d.quantities) if d.quantities else Quantities(),
        age=d.age,
        pregnant=d.pregnant,
    )


def to_case(case_input: CaseInput, case_id: str) -> Case:
    """The API's case as the domain's :class:`Case` (no outcome: there is none before judgment)."""
    court = Court(name=case_input.court, province=case_input.province) if case_input.court else None
    return Case(
        id=case_input.id or case_id,
        source="api",
        court=court,
        province=case_input.province,
        date=case_input.date,
        facts=case_input.facts,
        defendants=[_defendant(d) for d in case_input.defendants],
    )


def complete_facts(case: Case, case_input: CaseInput, catalogue: ChargeCatalogue | None = None) -> Case:
    """Fill what the caller left out (role, circumstances, quantities, stated tiers) from the facts, with
    text spans; what the caller stated, even an empty list, is kept as stated. Tiers are named as
    ``catalogue`` (the served rule set) names them."""
    extracted = extract_defendant_facts(case, catalogue)
    defendants = []
    for found, given, stated in zip(extracted.defendants, case_input.defendants, case.defendants, strict=True):
        update: dict[str, Any] = {}
        if given.role is not None:
            update.update(role=stated.role, role_evidence=None)
        if given.circumstances is not None:
            update["circumstances"] = stated.circumstances
        if given.aggravations is not None:
            update["aggravations"] = stated.aggravations
        if given.quantities is not None:
            update["quantities"] = stated.quantities
        amounts_stated = given.quantities is not None or given.charge_quantities is not None
        if given.tiers is not None or amounts_stated:
            update["charges"] = [_stated_charge(f, s, given.tiers is not None, amounts_stated)
                                 for f, s in zip(found.charges, stated.charges, strict=True)]
        defendants.append(found.model_copy(update=update) if update else found)
    return extracted.model_copy(update={"defendants": defendants})


def _stated_charge(found: Charge, stated: Charge, tier_stated: bool, amounts_stated: bool) -> Charge:
    """The charge as read, with what the caller stated of it: its tier where ``tiers`` was given, its own
    quantities (or none) where ``quantities`` or ``charge_quantities`` was."""
    update: dict[str, Any] = {}
    if tier_stated:
        update.update(tier=stated.tier, tier_evidence=stated.tier_evidence)
    if amounts_stated:
        update["quantities"] = stated.quantities
    return found.model_copy(update=update)


def _guideline(result: Any) -> GuidelineOut | None:
    if result is None:
        return None
    return GuidelineOut(
        low_months=result.low_months,
        point_months=result.point_months,
        high_months=result.high_months,
        kind=result.kind,
        kind_label=result.kind.label,
        form=result.form,
        probation_eligible=result.probation_eligible,
        fine_yuan=result.fine_yuan,
        steps=[
            GuidelineStepOut(stage=s.stage, stage_label=STAGE_LABELS.get(s.stage, s.stage), rule=s.rule, basis=s.basis,
                             circumstance=s.circumstance.label if s.circumstance else None, ratio=s.ratio,
                             months=s.months, value_months=s.value_months, charge=s.charge)
            for s in result.steps
        ],
        summary_text=result.summary_text(),
        explanation_text=result.explain_text(),
        ruleset_version=result.ruleset_version,
    )


def _statutory(result: Any) -> StatutoryOut | None:
    s = result.statutory if result is not None else None
    if s is None:
        return None
    return StatutoryOut(charge=s.charge, article=s.article, tier_label=s.tier_label, min_months=s.min_months,
                        max_months=s.max_months, min_kind=s.min_kind, max_kind=s.max_kind)


_SIMILAR_OUT_FIELDS = frozenset(SimilarCaseOut.model_fields)


def similar_case_out(hit: SimilarCase) -> SimilarCaseOut:
    """A hit as the API shows it. A :class:`SimilarCase` is validated already and its fields have
    the output's types, so it is not validated a second time (thirty hits a 3-defendant request)."""
    return trusted(SimilarCaseOut, {
        "case_id": hit.case_id, "court": hit.court, "province": hit.province, "province_name": hit.province_name,
        "date": hit.date, "charges": list(hit.charges), "defendant": mask_name(hit.defendant),
        "sentence": hit.sentence, "sentence_text": hit.sentence_text or None, "score": round(float(hit.score), 4),
        "matched": list(hit.matched), "tier": hit.tier, "role": hit.role, "circumstances": list(hit.circumstances),
        "synthetic": hit.synthetic,
    }, _SIMILAR_OUT_FIELDS)


_SCOPE_LABELS = {"any": "全国", "other": "外省", "own": "本省"}


def cohort_definition_text(definition: dict[str, Any]) -> str:
    """``罪名：盗窃；法定刑幅度：数额较大；具有：自首；范围：全国`` and the notes on relaxed criteria."""
    parts = []
    if definition.get("charge"):
        parts.append(f"罪名：{definition['charge']}")
    if definition.get("tier"):
        parts.append(f"法定刑幅度：{definition['tier']}")
    circumstances = definition.get("circumstances")
    if isinstance(circumstances, dict):
        present = circumstances.get("present") or []
        parts.append("具有：" + "、".join(present) if present else "无关键量刑情节")
    scope = definition.get("province_scope")
    if scope:
        parts.append(f"范围：{_SCOPE_LABELS.get(scope, scope)}")
    parts += [str(definition[k]) for k in ("tier_note", "relaxed_note") if definition.get(k)]
    return "；".join(parts)


def cohort_out(stats: Any) -> CohortOut:
    return CohortOut(
        definition=stats.definition, definition_text=cohort_definition_text(stats.definition), n=stats.n,
        reported=stats.reported, reason=stats.reason,
        median_months=stats.median_months, q1_months=stats.q1_months, q3_months=stats.q3_months,
        histogram=[HistogramBinOut(low_months=b.low_months, high_months=b.high_months, count=b.count)
                   for b in stats.histogram],
        share_non_custodial=stats.share_non_custodial,
        by_province=[ProvinceStat(province=p.province, province_name=p.province_name, n=p.n,
                                  median_months=p.median_months, share_non_custodial=p.share_non_custodial,
                                  reported=p.reported) for p in stats.by_province],
        excluded=dict(stats.excluded),
    )


def _facts_used(defendant: Defendant, given: DefendantInput) -> ExtractedFacts:
    role_source = "input" if given.role is not None else ("extracted" if defendant.role_evidence else "default")
    circ_source = "input" if given.circumstances is not None else "extracted"
    return ExtractedFacts(
        unit=defendant.is_unit,
        unit_source="input" if given.unit is not None else "name",
        role=defendant.role,
        role_label=defendant.role.label,
        age=defendant.age,
        pregnant=bool(defendant.pregnant),
        pregnant_source="input" if given.pregnant is not None else "extracted",
        role_source=role_source,
        role_evidence=defendant.role_evidence,
        circumstances=[ExtractedCircumstance(code=c.code, label=c.code.label, source=circ_source, evidence=c.evidence)
                       for c in defendant.circumstances],
        aggravations=[ExtractedAggravation(code=a.code, label=a.code.label, evidence=a.evidence,
                                           source="input" if given.aggravations is not None else "extracted")
                      for a in defendant.aggravations],
        quantities=defendant.quantities,
        quantities_source="input" if given.quantities is not None else "extracted",
        stated_tiers=[StatedTier(charge=c.name, tier=c.tier, evidence=c.tier_evidence,
                                 source="extracted" if c.tier_read else "input")
                      for c in defendant.charges if c.tier is not None],
        charge_quantities=[ChargeQuantitiesOut(
            charge=c.name, quantities=c.quantities,
            source="input" if c.name in (given.charge_quantities or {}) else "extracted",
        ) for c in defendant.charges if c.quantities is not None],
    )


def province_scope(case: Case, requested: str | None = None) -> str:
    """Similar cases come from other provinces by default; without a known province, from anywhere."""
    known = case.known_province
    if requested:
        return requested
    return "other" if known else "any"


def recommend(bundle: Bundle, case_input: CaseInput, request_id: str, *, k: int = 10) -> RecommendationResponse:
    """The recommendation for every defendant of one case, from one bundle."""
    case = complete_facts(to_case(case_input, request_id), case_input, bundle.predictor.catalogue)
    predictions = bundle.predictor.predict_case(case)
    scope = province_scope(case)
    similar = bundle.index.search_many(case, case.defendants, k=k, province_scope=scope,
                                       guidelines=[p.guideline for p in predictions])
    out: list[DefendantRecommendation] = []
    for defendant, given, p, hits in zip(case.defendants, case_input.defendants, predictions, similar, strict=True):
        g = p.guideline
        cohort = bundle.cohorts.get(case, defendant, g)
        r = p.range
        out.append(DefendantRecommendation(
            name=defendant.name,
            charges=defendant.charge_names,
            range=RangeOut(low_months=r.low_months, point_months=r.point_months, high_months=r.high_months,
                           confidence=r.confidence),
            form=FormOut(predicted=p.form, label=p.form.label,
                         probabilities={SentenceForm(f): round(float(v), 4) for f, v in p.form_probabilities.items()}),
            fine_yuan=g.fine_yuan if g is not None else None,
            statutory=_statutory(g),
            guideline=_guideline(g),
            explanation=[ContributionOut(group=c.group, label=c.label, months=c.months) for c in p.contributions],
            similar_cases=[similar_case_out(h) for h in hits],
            cohort=cohort,
            facts_used=_facts_used(defendant, given),
            warnings=defendant_warnings(bundle.predictor.catalogue, case, defendant, p),
        ))
    return RecommendationResponse(request_id=request_id, model_version=bundle.model_version,
                                  ruleset_version=bundle.ruleset_version, case_id=case_input.id, defendants=out)


def similar(bundle: Bundle, case_input: CaseInput, name: str, *, k: int, scope: str | None) -> SimilarCasesResponse:
    """Similar cases and the cohort for one defendant (``scope``: the request's province_scope)."""
    case = complete_facts(to_case(case_input, "query"), case_input, bundle.predictor.catalogue)
    defendant = next(d for d in case.defendants if d.name == name)
    scope = province_scope(case, scope)
    if scope in ("other", "own") and not case.known_province:
        raise QueryError("province_scope", f"province_scope={scope!r} needs the case's province; give 'province'")
    hits = bundle.index.search(case, defendant, k=k, province_scope=scope)
    cohort = bundle.index.cohort(case, defendant, province_scope=scope)
    return SimilarCasesResponse(model_version=bundle.model_version, defendant=name,
                                similar_cases=[similar_case_out(h) for h in hits], cohort=cohort_out(cohort))


class QueryError(ValueError):
    """A request that is well-formed but cannot be answered as asked; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def audit_summary(response: RecommendationResponse) -> dict[str, Any]:
    """What the audit trail keeps of a recommendation: enough to check a later decision against it."""
    return {
        "case_id": response.case_id,
        "defendants": [
            {
                "name": d.name,
                "charges": d.charges,
                "low_months": d.range.low_months,
                "point_months": d.range.point_months,
                "high_months": d.range.high_months,
                "confidence": d.range.confidence,
                "form": d.form.predicted.value,
                "fine_yuan": d.fine_yuan,
                "tier": d.statutory.tier_label if d.statutory else None,
                "similar_case_ids": [s.case_id for s in d.similar_cases],
                "warnings": [w.code for w in d.warnings],
            }
            for d in response.defendants
        ],
    }


@dataclass(frozen=True)
class DecisionAssessment:
    sentence_text: str
    departure: str | None


def assess_decision(outputs: dict[str, Any], decision: DecisionRequest) -> DecisionAssessment:
    """Does the prosecutor's sentence depart from what was recommended (form, or months outside the range)?"""
    recommended = {d["name"]: d for d in outputs.get("defendants", [])}
    if decision.defendant not in recommended:
        raise QueryError("defendant", f"no defendant {decision.defendant!r} in that recommendation; "
                         f"one of {sorted(recommended)}")
    r = recommended[decision.defendant]
    s = decision.sentence
    text = format_sentence(s)
    if s.form.value != r["form"]:
        return DecisionAssessment(text, f"执行方式为{s.form.label}，建议为{SentenceForm(r['form']).label}")
    low, high = r.get("low_months"), r.get("high_months")
    if s.kind.has_term and low is not None and high is not None:
        months = s.months or 0
        if months < math.floor(low) or months > math.ceil(high):
            return DecisionAssessment(text, f"刑期{months}个月，不在建议区间{low:g}–{high:g}个月内")
    return DecisionAssessment(text, None)


def case_view(case: Case) -> CaseView:
    """A stored judgment for display: party names masked in the names and in the facts."""
    names = [d.name for d in case.defendants]
    return CaseView(
        id=case.id,
        synthetic=case.synthetic,
        case_number=case.case_number,
        court=case.court.name if case.court else None,
        province=case.known_province,
        date=case.date,
        facts=mask_text(case.facts, names),
        defendants=[
            CaseDefendantView(
                name=mask_name(d.name), charges=d.charge_names, role=d.role,
                circumstances=[c.code for c in d.circumstances], sentence=d.sentence,
                sentence_text=format_sentence(d.sentence) if d.sentence else None,
            )
            for d in case.defendants
        ],
    )
