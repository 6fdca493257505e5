"""How far the facts the service reads decide a sentence: real defendants of one legal profile, each
predicted by the median sentence of the others.

    .venv/bin/python -m benchmarks.eval_ceiling [--data ../shared/data] [--json OUT]

A profile is what the guideline and the learned model are given of a defendant: the charges (as the
catalogue names them), the circumstances, the role and the guideline's result (its point to the
nearest month, or 无期徒刑/死刑). Defendants who share a profile with at least one other are
predicted by the median real sentence of those others (leave-one-out: never their own). No method
that reads only the profile can tell them apart, so the score of that oracle on them is a ceiling
such a method could reach on them without reading more of the facts; the guideline's point is
scored on the same defendants beside it. Nothing is fitted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from sentencing.case import Case, Defendant
from sentencing.charges import ChargeCatalogue, default_catalogue
from sentencing.guideline import calculate
from sentencing.importers import read_cases
from sentencing.metrics import cail_score
from sentencing.sentence import CAIL_DEATH, CAIL_LIFE, SentenceKind

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = (("judge", Path("judge") / "judgments.jsonl"), ("lawbench", Path("lawbench") / "term_prediction.jsonl"))
_RANK_BEYOND_TERMS = {CAIL_LIFE: 10**6, CAIL_DEATH: 2 * 10**6}
Profile = tuple[tuple[str, ...], float, tuple[str, ...], str]


def guideline_label(d: Defendant, case: Case) -> float | None:
    """The guideline's result as a CAIL label: its point to the nearest month, −1 life, −2 death."""
    result = calculate(d, case)
    if result.kind is SentenceKind.LIFE:
        return CAIL_LIFE
    if result.kind is SentenceKind.DEATH:
        return CAIL_DEATH
    return None if result.point_months is None else float(round(result.point_months))


def profile(d: Defendant, guideline: float, catalogue: ChargeCatalogue) -> Profile:
    charges = tuple(sorted(spec.name if (spec := catalogue.resolve(c.name)) else c.name for c in d.charges))
    return charges, guideline, tuple(sorted(c.code.value for c in d.circumstances)), d.role.value


def median_sentence(labels: list[int]) -> float:
    """The median of CAIL labels, 无期徒刑 and 死刑 ranked above every term; of an even count the mean of
    the middle two where both are terms, else the lower."""
    ranked = sorted(labels, key=lambda m: _RANK_BEYOND_TERMS.get(m, m))
    low, high = ranked[(len(ranked) - 1) // 2], ranked[len(ranked) // 2]
    return (low + high) / 2 if low >= 0 and high >= 0 else low


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if not all((args.data / path).is_file() for _, path in FILES):
        print(f"real data not found under {args.data}: nothing to measure", file=sys.stderr)
        return 2
    catalogue = default_catalogue()
    groups: dict[Profile, list[tuple[int, float]]] = defaultdict(list)
    total = 0
    for fmt, path in FILES:
        for case in read_cases(fmt, [args.data / path], []):
            truth = {d.name: d.sentence for d in case.defendants}
            before = case.before_judgment()
            for d in before.defendants:
                sentence = truth.get(d.name)
                if sentence is None:
                    continue
                total += 1
                guideline = guideline_label(d, before)
                if guideline is not None:
                    groups[profile(d, guideline, catalogue)].append((sentence.term_months, guideline))
    shared = [members for members in groups.values() if len(members) >= 2]
    true, peers, guideline_points = [], [], []
    for members in shared:
        for i, (months, guideline) in enumerate(members):
            true.append(months)
            peers.append(median_sentence([m for j, (m, _) in enumerate(members) if j != i]))
            guideline_points.append(guideline)
    figures = {
        "defendants": total, "in_shared_profiles": len(true), "profiles": len(shared),
        "peers_median_cail": round(cail_score(true, peers), 1),
        "guideline_cail_same_defendants": round(cail_score(true, guideline_points), 1),
    }
    print(f"{total} sentenced defendants; {len(true)} share their profile with another ({len(shared)} profiles)")
    print(f"CAIL x100 on them: the others' median sentence {figures['peers_median_cail']}, "
          f"the guideline's point {figures['guideline_cail_same_defendants']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
