"""K-fold comparison on the real development data (JuDGE + LawBench), all methods in one run.

Defendants of one case stay in one fold. Each fold trains on the others and predicts the held-out
cases before judgment. Methods: the learned model (variants below), the per-charge median, the
guideline engine alone, a TF-IDF text regressor (CAIL2018 official-baseline style) and — when the
retrieval index exists — the median of the top-10 similar cases.

    .venv/bin/python benchmarks/eval_models.py --folds 5 [--synthetic 3000] [--json out.json]

Variants: ``log`` (the default model: ln months directly, monotone constraints, drawn toward the
guideline point by the weight its training fold's out-of-fold points choose, a conformal margin
per charge family), ``residual`` (the residual over the guideline point), ``no_monotone``,
``no_pull`` (not drawn toward the guideline: weight 0), ``one_margin`` (one conformal margin for
every charge family), ``text`` (plus the TF-IDF text estimate as a stacked feature,
features.text), and with ``--synthetic N``: ``synthetic_concat`` (synthetic demo cases added to
each training fold) and ``synthetic_init`` (continue boosters pre-trained on the synthetic corpus).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sentencing.case import Case  # noqa: E402
from training.dataset import Dataset, concat  # noqa: E402
from training.evaluate import Record, breakdown, summarize  # noqa: E402
from training.models import FORMS  # noqa: E402
from training.predictor import enforce_role_consistency, role_violations, set_unit_outcome  # noqa: E402
from training.train import FittedModels, TrainConfig, fit_models, group_folds, prepare  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def load_real() -> tuple[list[Case], int]:
    from sentencing.importers import CaseFormatError, read_cases

    errors: list[CaseFormatError] = []
    cases = list(read_cases("judge", [DATA / "judge" / "judgments.jsonl"], errors))
    cases += list(read_cases("lawbench", [DATA / "lawbench" / "term_prediction.jsonl"], errors))
    return cases, len(errors)


def records_for(ds: Dataset, months: np.ndarray, proba: np.ndarray) -> list[Record]:
    out = []
    for i in range(len(ds)):
        form = FORMS[int(np.argmax(proba[i]))]
        lo, pt, hi = (float(v) for v in months[i])
        if form in ("life", "death"):
            pred = -2.0 if form == "death" else -1.0
            lo = pt = hi = math.nan
        else:
            pred = pt
        out.append(Record(
            case_id=ds.case_ids[i], name=ds.names[i], true_months=int(ds.term_months[i]), true_form=ds.forms[i],
            pred_months=pred, low=lo, point=pt, high=hi, form=form,
            p_custodial=float(proba[i][[FORMS.index(f) for f in ("custody", "life", "death")]].sum()),
            guideline_low=float(ds.guideline[i, 0]), guideline_point=float(ds.guideline[i, 1]),
            guideline_high=float(ds.guideline[i, 2]), guideline_months=float(ds.guideline_cail[i]),
            guideline_custodial=ds.guideline_custodial[i], charge=ds.charges[i], family=ds.families[i],
            province=ds.provinces[i], n_defendants=int(ds.n_defendants[i]), source=ds.sources[i],
        ))
    return out


def role_check(cases: list[Case], ds: Dataset, rows: np.ndarray, months: np.ndarray, resolve: Any) -> tuple[int, int]:
    """Count violating pairs before enforcement, enforce in place, return (pairs, defendants adjusted)."""
    by_group: dict[int, list[int]] = defaultdict(list)
    for k, r in enumerate(rows):
        by_group[int(ds.groups[r])].append(k)
    pairs = adjusted = 0
    for g, ks in by_group.items():
        case = cases[g]
        if len(case.defendants) < 2:
            continue
        m = np.full((len(case.defendants), 3), np.nan)
        for k in ks:
            m[ds.positions[rows[k]]] = months[k]
        pairs += len(role_violations(case, m, resolve))
        fixed = enforce_role_consistency(case, m, resolve)
        adjusted += len(fixed)
        for k in ks:
            months[k] = m[ds.positions[rows[k]]]
    return pairs, adjusted


def tfidf_predict(train: Dataset, test: Dataset) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    term = train.has_term
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), max_features=100_000, sublinear_tf=True, min_df=2)
    Xtr = vec.fit_transform([t for t, k in zip(train.texts, term, strict=True) if k])
    model = Ridge(alpha=1.0).fit(Xtr, np.log1p(train.term_months[term]))
    return np.expm1(np.maximum(model.predict(vec.transform(test.texts)), 0.0))


def retrieval_predict(train_cases: list[Case], test: Dataset, test_cases: dict[str, Case], k: int = 10) -> list[float]:
    """Median term of the top-k similar training defendants (retrieval.search, any province, same charge).

    Falls back to all charges when the same-charge filter leaves nothing; NaN (scored as 0 months)
    when the index returns no neighbour at all.
    """
    import tempfile

    from retrieval.search import RetrievalIndex

    with tempfile.TemporaryDirectory() as tmp:
        index = RetrievalIndex.build(train_cases, Path(tmp) / "index")
        out: list[float] = []
        for case_id, pos in zip(test.case_ids, test.positions, strict=True):
            case = test_cases[case_id].before_judgment()
            d = case.defendants[int(pos)]
            hits = index.search(case, d, k=k, province_scope="any", same_charge=True)
            if not hits:
                hits = index.search(case, d, k=k, province_scope="any", same_charge=False)
            terms = [h.sentence.term_months for h in hits if h.sentence.term_months >= 0]
            out.append(float(np.median(terms)) if terms else math.nan)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic", type=int, default=0, help="synthetic demo cases for the pre-training variants")
    ap.add_argument("--variants", default="log,residual,no_monotone,no_pull,one_margin",
                    help="the first is the reference model")
    ap.add_argument("--json", type=Path, help="write all figures as JSON here")
    ap.add_argument("--no-retrieval", action="store_true", help="skip the top-10 similar cases baseline")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    cases, n_errors = load_real()
    cases = [c for c in cases if any(d.sentence is not None for d in c.defendants)]
    ds, spec = prepare(cases)
    from features.extract import FeatureExtractor
    from sentencing.charges import default_catalogue

    resolve = FeatureExtractor(spec, default_catalogue()).resolve
    print(f"real data: {len(cases)} cases, {len(ds)} sentenced defendants ({n_errors} unreadable lines skipped); "
          f"features in {time.perf_counter() - t0:.1f} s", flush=True)

    variants: dict[str, TrainConfig] = {}
    for name in args.variants.split(","):
        variants[name] = {
            "residual": TrainConfig(target="residual", seed=args.seed),
            "log": TrainConfig(target="log", seed=args.seed),
            "no_monotone": TrainConfig(monotone=False, seed=args.seed),
            "no_pull": TrainConfig(guideline_weight=0.0, seed=args.seed),
            "one_margin": TrainConfig(calibrate_by_family=False, seed=args.seed),
            "text": TrainConfig(text=True, seed=args.seed),
        }[name]
    synth: Dataset | None = None
    synth_model: FittedModels | None = None
    if args.synthetic:
        from sentencing.demo_corpus import generate_cases

        t = time.perf_counter()
        synth, _ = prepare(generate_cases(args.synthetic, seed=args.seed + 1))
        synth_model = fit_models(synth, spec, TrainConfig(seed=args.seed))
        variants["synthetic_concat"] = TrainConfig(seed=args.seed)
        variants["synthetic_init"] = TrainConfig(seed=args.seed, n_estimators=75)
        print(f"synthetic: {len(synth)} defendants, pre-trained in {time.perf_counter() - t:.1f} s", flush=True)

    folds = group_folds(ds.groups, args.folds, args.seed)
    records: dict[str, list[Record]] = defaultdict(list)
    extra: dict[str, list[float]] = defaultdict(list)
    baseline_records: list[Record] = []
    medians_pred: list[float] = []
    role_stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    pulls: dict[str, list[float]] = defaultdict(list)
    timings: dict[str, float] = defaultdict(float)
    for f, test_rows in enumerate(folds):
        train_rows = np.setdiff1d(np.arange(len(ds)), test_rows)
        train, test = ds.subset(train_rows), ds.subset(test_rows)
        for name, config in variants.items():
            t = time.perf_counter()
            if name == "synthetic_concat":
                assert synth is not None
                fitted = fit_models(concat(train, synth), spec, config)
            elif name == "synthetic_init":
                fitted = fit_models(train, spec, config, init_from=synth_model)
            else:
                fitted = fit_models(train, spec, config)
            months, proba = fitted.predict(fitted.with_text(test.X, test.texts))
            set_unit_outcome(months, proba, np.flatnonzero(test.units).tolist())
            timings[name] += time.perf_counter() - t
            pulls[name].append(fitted.range_model.guideline_weight_)
            stats = role_check(cases, ds, test_rows, months, resolve)
            role_stats[name][0] += stats[0]
            role_stats[name][1] += stats[1]
            records[name] += records_for(test, months, proba)
            if name == next(iter(variants)):
                baseline_records += records_for(test, months, proba)
                med = fitted.charge_medians
                medians_pred += [med.get(c, med["*"]) for c in test.charges]
        t = time.perf_counter()
        extra["tfidf_ridge"] += tfidf_predict(train, test).tolist()
        timings["tfidf_ridge"] += time.perf_counter() - t
        if not args.no_retrieval:
            t = time.perf_counter()
            train_groups = sorted(set(train.groups.tolist()))
            by_id = {cases[g].id: cases[g] for g in set(test.groups.tolist())}
            extra["retrieval_top10_median"] += retrieval_predict([cases[g] for g in train_groups], test, by_id)
            timings["retrieval_top10_median"] += time.perf_counter() - t
        print(f"fold {f + 1}/{len(folds)} done ({len(test)} defendants)", flush=True)

    # Records are in fold order; align the baselines with the first variant's order.
    results: dict[str, Any] = {"n_defendants": len(ds), "folds": args.folds, "timings_s": dict(timings)}
    first = next(iter(variants))
    base = summarize(baseline_records, None, dict(extra))
    med_metrics = summarize(baseline_records, None, {"charge_median": medians_pred})["baselines"]["charge_median"]
    base["baselines"]["charge_median"] = med_metrics
    results["baselines"] = base["baselines"]
    results["variants"] = {}
    for name, recs in records.items():
        s = summarize(recs)
        s.pop("baselines")
        s["role_pairs_violating_before_enforcement"], s["defendants_adjusted"] = role_stats[name]
        s["guideline_weight_by_fold"] = pulls[name]
        s["coverage_by_family"] = {k: m["coverage"] for k, m in breakdown(recs, lambda r: r.family).items()
                                   if "coverage" in m}
        results["variants"][name] = s
    best = records[first]
    results["by_family"] = breakdown(best, lambda r: r.family)
    results["by_defendants"] = breakdown(best, lambda r: "single" if r.n_defendants == 1 else "multi")
    results["by_source"] = breakdown(best, lambda r: r.source)
    n_charges = dict(zip(zip(ds.case_ids, ds.names, strict=True), ds.X[:, spec.index("charges_count")].tolist(),
                         strict=True))
    results["by_source_and_charges"] = breakdown(
        best, lambda r: f"{r.source}, {'one charge' if n_charges[(r.case_id, r.name)] <= 1 else 'several charges'}")

    def line(name: str, m: dict[str, Any]) -> str:
        cov = f"{m['coverage']:.1%}" if "coverage" in m else "-"
        width = f"{m['mean_width_months']:.1f}" if "mean_width_months" in m else "-"
        cust = f"{m['custody_accuracy']:.1%}" if "custody_accuracy" in m else "-"
        return (f"{name:<20} CAIL {m['cail_score']:5.1f}  MAE {m['mae_months']:6.2f}  ±25% {m['within_25pct']:.1%}"
                f"  cov {cov:>6}  width {width:>6}  custody {cust}")

    print(f"\n{args.folds}-fold CV on {len(ds)} real defendants (cases kept whole)")
    for name, m in results["variants"].items():
        print(line(f"model:{name}", m) + f"  role violations before enforcement: "
              f"{m['role_pairs_violating_before_enforcement']} pairs; guideline weight by fold "
              f"{' '.join(f'{w:.1f}' for w in m['guideline_weight_by_fold'])}")
    for name, m in results["baselines"].items():
        print(line(f"baseline:{name}", m))
    print("coverage of the range by charge family:")
    for name, m in results["variants"].items():
        cov = m["coverage_by_family"]
        print(f"  model:{name:<14} {min(cov.values()):.1%}–{max(cov.values()):.1%} over {len(cov)} families; "
              + ", ".join(f"{k} {v:.0%}" for k, v in sorted(cov.items())))
    print(f"\nby charge family (model:{first}):")
    for k, m in results["by_family"].items():
        print("  " + line(k, m) + f"  guideline CAIL {m['guideline_cail_score']:.1f}")
    print(f"\nsingle vs multi-defendant cases (model:{first}):")
    for k, m in results["by_defendants"].items():
        print("  " + line(k, m) + f"  guideline CAIL {m['guideline_cail_score']:.1f}")
    print(f"\nby source (model:{first}):")
    for k, m in results["by_source"].items():
        print("  " + line(k, m) + f"  guideline CAIL {m['guideline_cail_score']:.1f}")
    print(f"\nby source and number of charges (model:{first}):")
    for k, m in sorted(results["by_source_and_charges"].items()):
        print("  " + line(k, m) + f"  guideline CAIL {m['guideline_cail_score']:.1f}  n {m['n_defendants']}")
    spent = json.dumps({k: round(v, 1) for k, v in timings.items()})
    print(f"\ntotal {time.perf_counter() - t0:.1f} s; timings {spent}")
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
