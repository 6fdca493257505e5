"""The guideline engine alone on the real dev data, against the per-charge median, in one run.

    .venv/bin/python -m benchmarks.eval_guideline [--data ../shared/data] [--view court|facts|both] [--json OUT]

Inputs are what is known before judgment: :meth:`Case.before_judgment` (no sentence, no 判决如下
text; the importers strip 建议判处… from the facts). The ``facts`` view also drops the court's
reasoning (本院认为) and re-reads circumstances and quantities from the facts alone: the
prosecutor's position. Baselines are honest: the per-charge median and the 10th–90th
percentile range are computed leave-one-out (the defendant's own sentence is never in them).
Nothing is fitted: the guideline has no parameters learned from these files.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sentencing.case import Case, Quantities
from sentencing.charges import ChargeCatalogue, default_catalogue
from sentencing.guideline import GuidelineResult, calculate
from sentencing.importers import read_cases
from sentencing.metrics import cail_score, interval_coverage, mae_months, mean_width, within_share
from sentencing.parsing import extract_defendant_facts
from sentencing.sentence import SentenceForm

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LIFE_ORDER = {-1: 400, -2: 500}  # life/death ranked above any term when taking medians


@dataclass
class Row:
    dataset: str
    case_id: str
    province: str | None
    charge: str  # canonical name of the first charge (or the raw name when unknown)
    recognised: bool
    true: int  # CAIL label: months, -1 life, -2 death
    true_form: SentenceForm
    result: GuidelineResult
    micros: float


def facts_only(case: Case) -> Case:
    """The case without the court's reasoning, circumstances and quantities re-read from the facts."""
    stripped = case.model_copy(
        update={
            "reasoning": "",
            "defendants": [
                d.model_copy(
                    update={"circumstances": [], "quantities": Quantities(), "role_evidence": None, "role": "sole"}
                )
                for d in case.defendants
            ],
        }
    )
    return extract_defendant_facts(stripped)


def load(data: Path) -> list[tuple[str, Case]]:
    out: list[tuple[str, Case]] = []
    for dataset, fmt, rel in (
        ("judge", "judge", "judge/judgments.jsonl"),
        ("lawbench", "lawbench", "lawbench/term_prediction.jsonl"),
    ):
        errors: list = []
        for case in read_cases(fmt, [data / rel], errors):
            out.append((dataset, case))
        if errors:
            print(f"{dataset}: {len(errors)} lines skipped ({errors[0]})", file=sys.stderr)
    return out


def run(cases: list[tuple[str, Case]], view: str, catalogue: ChargeCatalogue) -> list[Row]:
    rows: list[Row] = []
    for dataset, case in cases:
        truth = {d.name: d.sentence for d in case.defendants}
        known = case.before_judgment()
        if view == "facts":
            known = facts_only(known)
        for d in known.defendants:
            sentence = truth.get(d.name)
            if sentence is None or not d.charges:
                continue
            t0 = time.perf_counter()
            result = calculate(d, known, catalogue=catalogue)
            micros = (time.perf_counter() - t0) * 1e6
            resolved = catalogue.resolve_all(d.charge_names)
            first = resolved[0]
            rows.append(
                Row(
                    dataset=dataset,
                    case_id=case.id,
                    province=case.province,
                    charge=first[1].name if first[1] else first[0],
                    recognised=all(s is not None for _, s in resolved),
                    true=sentence.term_months,
                    true_form=sentence.form,
                    result=result,
                    micros=micros,
                )
            )
    return rows


def _quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    pos = q * (len(values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def _as_label(value: float) -> float:
    if value >= LIFE_ORDER[-2]:
        return -2
    if value >= LIFE_ORDER[-1]:
        return -1
    return value


def median_baseline(rows: list[Row]) -> tuple[list[float], list[float], list[float]]:
    """Leave-one-out per-charge median and 10–90% range (charges with < 3 others fall back to all)."""
    by_charge: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_charge[r.charge].append(i)
    ordered = [LIFE_ORDER.get(r.true, r.true) for r in rows]
    points, lows, highs = [], [], []
    for i, r in enumerate(rows):
        peers = [ordered[j] for j in by_charge[r.charge] if j != i]
        if len(peers) < 3:
            peers = [ordered[j] for j in range(len(rows)) if j != i]
        points.append(_as_label(statistics.median(peers)))
        lows.append(_quantile(peers, 0.1))
        highs.append(_quantile(peers, 0.9))
    return points, lows, highs


def _guideline_point(r: Row) -> float:
    return float(r.result.term_months) if r.result.point_months is None else r.result.point_months


def _interval(r: Row) -> tuple[float, float]:
    res = r.result
    if res.point_months is None:  # life/death: an open range above 15 years
        return (180.0, 10_000.0) if res.term_months == -1 else (240.0, 10_000.0)
    return res.low_months or 0.0, res.high_months or 0.0


def _true_for_interval(r: Row) -> int:
    return LIFE_ORDER.get(r.true, r.true)


def scores(rows: list[Row], base: tuple[list[float], list[float], list[float]], idx: Iterable[int]) -> dict:
    idx = list(idx)
    true = [rows[i].true for i in idx]
    g_point = [_guideline_point(rows[i]) for i in idx]
    g_int = [_interval(rows[i]) for i in idx]
    b_point = [base[0][i] for i in idx]
    t_int = [_true_for_interval(rows[i]) for i in idx]
    terms = [i for i in idx if rows[i].true >= 0]
    return {
        "n": len(idx),
        "guideline": {
            "cail": cail_score(true, g_point),
            "mae": mae_months(true, g_point),
            "within25": within_share(true, g_point),
            "coverage": interval_coverage(t_int, [lo for lo, _ in g_int], [hi for _, hi in g_int]),
            "width": mean_width(
                [_interval(rows[i])[0] for i in terms], [min(_interval(rows[i])[1], 300.0) for i in terms]
            )
            if terms
            else float("nan"),
        },
        "charge_median": {
            "cail": cail_score(true, b_point),
            "mae": mae_months(true, b_point),
            "within25": within_share(true, b_point),
            "coverage": interval_coverage(t_int, [base[1][i] for i in idx], [base[2][i] for i in idx]),
            "width": mean_width([base[1][i] for i in terms], [min(base[2][i], 300.0) for i in terms])
            if terms
            else float("nan"),
        },
    }


def _fmt(s: dict) -> str:
    g, b = s["guideline"], s["charge_median"]
    return (
        f"{s['n']:>4} | {g['cail']:5.1f} {b['cail']:5.1f} | {g['mae']:6.1f} {b['mae']:6.1f} | "
        f"{g['within25']:5.0%} {b['within25']:5.0%} | {g['coverage']:5.0%} {g['width']:6.1f} | "
        f"{b['coverage']:5.0%} {b['width']:6.1f}"
    )


HEADER = (
    "   n |  CAIL×100   |  MAE months   | within ±25% | guideline range | median 10–90%\n"
    "     |  guid  med  |  guid    med  |  guid   med | cover   width   | cover   width"
)


def report(rows: list[Row], view: str, min_per_charge: int) -> dict:
    base = median_baseline(rows)
    out: dict = {"view": view, "all": scores(rows, base, range(len(rows)))}
    print(f"\n=== view: {view} — {len(rows)} defendants (judge + lawbench), guideline vs leave-one-out charge median")
    print(HEADER)
    print(_fmt(out["all"]), " all")
    for dataset in ("judge", "lawbench"):
        idx = [i for i, r in enumerate(rows) if r.dataset == dataset]
        out[dataset] = scores(rows, base, idx)
        print(_fmt(out[dataset]), f" {dataset}")
    rec = [i for i, r in enumerate(rows) if r.recognised]
    guided = [i for i, r in enumerate(rows) if r.recognised and not any(c.derived for c in r.result.charge_results)]
    derived = [i for i, r in enumerate(rows) if r.recognised and any(c.derived for c in r.result.charge_results)]
    for label, idx in (("recognised charges", rec), ("guideline-priced", guided), ("derived-tier charges", derived)):
        out[label] = scores(rows, base, idx)
        print(_fmt(out[label]), f" {label}")
    print(f"\nper charge (first charge; ≥{min_per_charge} defendants):")
    by_charge: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_charge[r.charge].append(i)
    out["per_charge"] = {}
    for charge, idx in sorted(by_charge.items(), key=lambda kv: -len(kv[1])):
        if len(idx) < min_per_charge:
            continue
        out["per_charge"][charge] = scores(rows, base, idx)
        print(_fmt(out["per_charge"][charge]), f" {charge}")
    print("\nper province (judge data; ≥5 defendants):")
    by_prov: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.dataset == "judge":
            by_prov[r.province or "?"].append(i)
    out["per_province"] = {}
    for prov, idx in sorted(by_prov.items(), key=lambda kv: -len(kv[1])):
        if len(idx) < 5:
            continue
        out["per_province"][prov] = scores(rows, base, idx)
        print(_fmt(out["per_province"][prov]), f" {prov}")
    # Custody decision (judge data: the form is known there; LawBench labels carry no probation).
    judged = [r for r in rows if r.dataset == "judge" and r.true_form in (SentenceForm.CUSTODY, SentenceForm.PROBATION)]
    if judged:
        acc = sum((r.result.form is SentenceForm.PROBATION) == (r.true_form is SentenceForm.PROBATION) for r in judged)
        prob_share = sum(r.true_form is SentenceForm.PROBATION for r in judged) / len(judged)
        out["form_accuracy"] = acc / len(judged)
        out["form_majority"] = max(prob_share, 1 - prob_share)
        print(
            f"\ncustody vs probation (judge, {len(judged)} defendants with 实刑/缓刑): guideline accuracy "
            f"{acc / len(judged):.1%}; majority-class baseline {max(prob_share, 1 - prob_share):.1%}"
        )
    warn_counts: dict[str, int] = defaultdict(int)
    for r in rows:
        for w in {w.code for w in r.result.warnings}:
            warn_counts[w] += 1
    out["warnings"] = dict(warn_counts)
    print("warnings (defendants with each code): " + ", ".join(f"{k} {v}" for k, v in sorted(warn_counts.items())))
    micros = sorted(r.micros for r in rows)
    out["micros_median"] = micros[len(micros) // 2]
    out["micros_p99"] = micros[int(len(micros) * 0.99)]
    print(f"calculate(): median {out['micros_median']:.0f} µs, p99 {out['micros_p99']:.0f} µs per defendant")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--view", choices=("court", "facts", "both"), default="both")
    parser.add_argument("--min-per-charge", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not (args.data / "judge" / "judgments.jsonl").is_file():
        print(f"real data not found under {args.data}", file=sys.stderr)
        return 2
    catalogue = default_catalogue()
    cases = load(args.data)
    total = sum(1 for _, c in cases for d in c.defendants if d.sentence is not None)
    with_charge = [d for _, c in cases for d in c.defendants if d.charges]
    recognised = sum(all(s is not None for _, s in catalogue.resolve_all(d.charge_names)) for d in with_charge)
    print(
        f"catalogue {catalogue.version}: {len(catalogue.charges())} charges; "
        f"defendants whose charges are all recognised: {recognised}/{len(with_charge)} = "
        f"{recognised / max(1, len(with_charge)):.1%} ({total} defendants with a sentence)"
    )
    results = {}
    for view in ("court", "facts") if args.view == "both" else (args.view,):
        rows = run(cases, view, catalogue)
        results[view] = report(rows, view, args.min_per_charge)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
