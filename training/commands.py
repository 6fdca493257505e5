"""``sentencing train | evaluate | predict``: the learned range model from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from sentencing.case import Case

if TYPE_CHECKING:
    from training.predictor import RangePredictor

FORMATS = ("judge", "lawbench", "cail2018", "cases")


def _add_input(p: argparse.ArgumentParser, *, store: bool) -> None:
    if store:
        p.add_argument("--store", type=Path, help="SQLite case store to read (sentencing.store)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, help="format of FILE...")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE")


def _cases(args: argparse.Namespace) -> Iterator[Case]:
    store = getattr(args, "store", None)
    if store is not None and (args.fmt or args.files):
        raise SystemExit("give either --store or --format F FILE..., not both")
    if store is not None:
        from sentencing.store import CaseStore

        if not Path(store).exists():
            raise SystemExit(f"--store: no case store at {store}")
        return iter(CaseStore(store).iter_cases())
    if not args.fmt or not args.files:
        raise SystemExit("give --format F FILE... (or --store PATH for train)")
    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        raise SystemExit(f"input file not found: {', '.join(missing)}")
    from sentencing.importers import read_cases

    return iter(read_cases(args.fmt, args.files))


def _cmd_train(args: argparse.Namespace) -> int:
    from training.train import TrainConfig, train

    try:
        config = TrainConfig(target=args.target, monotone=not args.no_monotone, confidence=args.confidence,
                             text=args.text, guideline_weight=args.guideline_weight,
                             calibrate_by_family=not args.one_margin)
    except ValidationError as e:  # an option out of range: name it, no traceback
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise SystemExit(f"sentencing train: {problems}") from None
    out = train(_cases(args), args.out, config=config)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    print(json.dumps({"model_dir": str(out), "version": manifest["version"], "training": manifest["training"],
                      "metrics": manifest["metrics"]}, ensure_ascii=False))
    return 0


def _load(model: Path) -> RangePredictor:
    from training.predictor import ModelLoadError, RangePredictor

    try:
        return RangePredictor.load(model)
    except ModelLoadError as e:
        raise SystemExit(f"--model: {e}") from None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate

    predictor = _load(args.model)
    cases = list(_cases(args))
    summary, records = evaluate(predictor, cases)
    if args.report:
        from training.report import write_report

        path = write_report(args.report, summary, records, predictor, cases)
        print(f"report written to {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        b = summary["baselines"]
        print(f"{summary['n_defendants']} defendants: CAIL {summary['cail_score']:.1f}, MAE {summary['mae_months']:.2f}"
              f" months, coverage {summary['coverage']:.1%}, width {summary['mean_width_months']:.1f} months, "
              f"custody accuracy {summary['custody_accuracy']:.1%}")
        for name, m in b.items():
            print(f"  baseline {name}: CAIL {m['cail_score']:.1f}, MAE {m['mae_months']:.2f} months")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    predictor = _load(args.model)
    for case in _cases(args):
        preds = predictor.predict_case(case.before_judgment())
        out = {
            "case_id": case.id,
            "defendants": [
                {
                    "name": p.name,
                    "range": p.range.model_dump(),
                    "form": p.form.value,
                    "form_probabilities": {k: round(v, 4) for k, v in p.form_probabilities.items()},
                    **({"contributions": [c.model_dump() for c in p.contributions], "warnings": p.warnings}
                       if args.explain else {}),
                }
                for p in preds
            ],
        }
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train the range and form models into a model directory")
    _add_input(p, store=True)
    p.add_argument("--out", type=Path, required=True, help="model directory to write (replaced atomically)")
    p.add_argument("--target", choices=("log", "residual"), default="log",
                   help="ln(1+months) directly, or the residual over the guideline point")
    p.add_argument("--confidence", type=float, default=0.8)
    p.add_argument("--no-monotone", action="store_true", help="drop the legal-direction monotone constraints")
    p.add_argument("--text", action="store_true",
                   help="add the TF-IDF text estimate feature: better on real judgments, about 0.16 ms more a case")
    p.add_argument("--guideline-weight", type=float, metavar="W",
                   help="draw the range toward the guideline point by W (0–1); default: chosen on held-out rows")
    p.add_argument("--one-margin", action="store_true",
                   help="one conformal margin for every charge family (default: a margin per family with enough rows)")
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser("evaluate", help="score a model on labelled cases against baselines")
    p.add_argument("--model", type=Path, required=True)
    _add_input(p, store=True)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--report", type=Path, help="write REPORT.md and plots to this directory")
    p.set_defaults(func=_cmd_evaluate)

    p = subparsers.add_parser("predict", help="predict each defendant's range and form (one JSON line per case)")
    p.add_argument("--model", type=Path, required=True)
    _add_input(p, store=False)
    p.add_argument("--explain", action="store_true", help="add contributions and warnings")
    p.set_defaults(func=_cmd_predict)
