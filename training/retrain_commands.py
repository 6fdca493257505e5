"""``sentencing retrain`` and ``sentencing models list|promote|rollback``: the model registry by hand."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("retrain", help="train a candidate on new judgments; promote it only if not worse")
    p.add_argument("--store", type=Path, required=True, help="SQLite case store (sentencing.store)")
    p.add_argument("--registry", type=Path, required=True, help="model registry directory")
    p.add_argument("--holdout-share", type=float, default=0.2, help="share of real cases held back for scoring")
    p.add_argument("--evaluate-max", type=int, default=None, metavar="N",
                   help="score on at most N held-back cases, the same ones every run (default 20,000)")
    p.add_argument("--no-index", action="store_true", help="train the range models only")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="train on a Dask cluster (tcp://host:8786, or local:N); see docs/distributed.md")
    p.set_defaults(func=_cmd_retrain)

    m = sub.add_parser("models", help="list, promote or roll back registered versions")
    msub = m.add_subparsers(dest="models_command", required=True)
    ls = msub.add_parser("list", help="every version with its metrics and decision")
    ls.add_argument("--registry", type=Path, required=True)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_cmd_list)
    pr = msub.add_parser("promote", help="serve a registered version")
    pr.add_argument("version")
    pr.add_argument("--registry", type=Path, required=True)
    pr.add_argument("--reason", default="promoted by hand")
    pr.set_defaults(func=_cmd_promote)
    rb = msub.add_parser("rollback", help="serve the version that served before the current one")
    rb.add_argument("--registry", type=Path, required=True)
    rb.add_argument("--reason", default="rolled back by hand")
    rb.set_defaults(func=_cmd_rollback)


class _JsonLog(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": round(record.created, 3), "level": record.levelname.lower(),
                           "logger": record.name, "message": record.getMessage()}, ensure_ascii=False)


_CONFIG_OPTIONS = {"holdout_share": "--holdout-share", "evaluate_max_cases": "--evaluate-max"}


def _cmd_retrain(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from sentencing.store import CaseStore
    from training.registry import ModelRegistry, RegistryError
    from training.retrain import RetrainConfig, retrain

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLog())
    logger = logging.getLogger("liangxing")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    if not args.store.exists():
        raise SystemExit(f"--store: no case store at {args.store}")
    if args.scheduler and not (args.scheduler.startswith("local") or "://" in args.scheduler):
        raise SystemExit(f"--scheduler: {args.scheduler!r} is not an address (tcp://host:8786 or local:N)")
    try:  # the bounds live on RetrainConfig; name the option that broke one
        config = RetrainConfig(holdout_share=args.holdout_share, with_index=not args.no_index,
                               **({} if args.evaluate_max is None else {"evaluate_max_cases": args.evaluate_max}))
    except ValidationError as e:
        first = e.errors()[0]
        option = _CONFIG_OPTIONS.get(str(first["loc"][0]), str(first["loc"][0]))
        raise SystemExit(f"{option}: {first['msg']} (got {first['input']!r})") from None
    started = time.perf_counter()
    try:
        report = retrain(CaseStore(args.store), ModelRegistry(args.registry), config=config,
                         progress=lambda msg: logger.info(msg), scheduler=args.scheduler)
    except RegistryError as e:
        raise SystemExit(f"--registry: {e}") from None
    summary = report.model_dump(mode="json") | {"wall_s": round(time.perf_counter() - started, 2)}
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from training.registry import ModelRegistry

    registry = ModelRegistry(args.registry)
    current = registry.current_id()
    versions = registry.versions()
    if args.json:
        for v in versions:
            print(json.dumps(v.model_dump(mode="json") | {"serving": v.id == current}, ensure_ascii=False))
        return 0
    for v in versions:
        m = v.metrics
        print(f"{'*' if v.id == current else ' '} {v.id}  {v.decision:<9} cases={v.n_cases:<8} "
              f"CAIL={m.get('cail_score', '-')} MAE={m.get('mae_months', '-')} coverage={m.get('coverage', '-')}  "
              f"{v.reason}")
    if not versions:
        print(f"no versions in {args.registry}")
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from training.registry import ModelRegistry, RegistryError

    try:
        ModelRegistry(args.registry).promote(args.version, reason=args.reason)
    except RegistryError as e:
        raise SystemExit(str(e)) from None
    print(f"serving {args.version}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from training.registry import ModelRegistry, RegistryError

    try:
        vid = ModelRegistry(args.registry).rollback(reason=args.reason)
    except RegistryError as e:
        raise SystemExit(str(e)) from None
    print(f"serving {vid}")
    return 0
