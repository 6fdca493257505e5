"""``sentencing distributed run|search``: the pipeline on a Dask cluster from the shell.

    sentencing distributed run --scheduler tcp://host:8786 --format judge FILE… --work-dir /shared/work \
        --model-dir /shared/model --index-dir /shared/index
    sentencing distributed search CASE.json --index-dir /shared/index [-k 10] [--scope other]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = subparsers.add_parser("distributed", help="the training pipeline on a Dask cluster (docs/distributed.md)")
    sub = d.add_subparsers(dest="distributed_command", required=True, metavar="ACTION")
    r = sub.add_parser("run", help="import → features → LightGBM → index shards, partitioned over the workers")
    r.add_argument("--scheduler", required=True, metavar="ADDRESS", help="tcp://host:8786, or local:N")
    r.add_argument("--format", default="judge", help="input format (sentencing.importers; default judge)")
    r.add_argument("files", nargs="+", type=Path, help="judgment files on storage every worker sees")
    r.add_argument("--work-dir", type=Path, required=True, help="shared directory for the Parquet stages")
    r.add_argument("--model-dir", type=Path, help="write the range model directory here")
    r.add_argument("--index-dir", type=Path, help="write the sharded similar-case index here")
    r.add_argument("--partition", type=int, default=2_000, help="cases per partition (default %(default)s)")
    r.add_argument("--shards", type=int, help="index shards (default: one per worker)")
    r.add_argument("--keep-work", action="store_true", help="keep the intermediate Parquet files")
    r.set_defaults(func=_cmd_run)
    s = sub.add_parser("search", help="similar cases from a sharded index (fan-out and merge)")
    s.add_argument("case", type=Path, help="case JSON file (the project's Case schema)")
    s.add_argument("--index-dir", type=Path, required=True)
    s.add_argument("--defendant", help="defendant name (default: the first)")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--scope", choices=("other", "own", "any"), default="other")
    s.add_argument("--mode", choices=("dense", "hybrid"), default="dense")
    s.set_defaults(func=_cmd_search)


def _cmd_run(args: argparse.Namespace) -> int:
    from training.distributed import DistributedConfig, close, connect, run_pipeline
    from training.retrain_commands import _JsonLog

    if args.model_dir is None and args.index_dir is None:
        print("sentencing distributed run: give --model-dir, --index-dir or both", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLog())
    logger = logging.getLogger("liangxing")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        config = DistributedConfig(cases_per_partition=args.partition, shards=args.shards, keep_work=args.keep_work)
        client = connect(args.scheduler)
    except ValueError as e:
        print(f"sentencing distributed run: {e}", file=sys.stderr)
        return 2
    try:
        summary = run_pipeline(client, fmt=args.format, paths=args.files, work_dir=args.work_dir,
                               model_dir=args.model_dir, index_dir=args.index_dir, config=config)
    except (ValueError, FileNotFoundError) as e:
        print(f"sentencing distributed run: {e}", file=sys.stderr)
        return 2
    finally:
        close(client)
    print(json.dumps(summary.model_dump(mode="json"), ensure_ascii=False, indent=1))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from retrieval.index import IndexFormatError
    from retrieval.search import RetrievalQueryError
    from retrieval.shards import ShardedIndex
    from sentencing.case import Case

    try:
        case = Case.model_validate_json(args.case.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as e:
        print(f"sentencing distributed search: case file {args.case}: {e}", file=sys.stderr)
        return 2
    names = [d.name for d in case.defendants]
    if not names or (args.defendant and args.defendant not in names):
        print(f"sentencing distributed search: --defendant {args.defendant!r} is not among {names}", file=sys.stderr)
        return 2
    defendant = case.defendants[names.index(args.defendant) if args.defendant else 0]
    try:
        index = ShardedIndex.load(args.index_dir)
        hits = index.search(case, defendant, k=args.k, province_scope=args.scope, mode=args.mode)
    except (IndexFormatError, RetrievalQueryError) as e:
        print(f"sentencing distributed search: {e}", file=sys.stderr)
        return 2
    for hit in hits:
        print(json.dumps(hit.model_dump(mode="json"), ensure_ascii=False))
    return 0
