"""The synthetic demo corpus (合成示例数据): realistic, clearly labelled, fictitious judgments.

``sentencing demo-corpus --cases N --seed S --out PATH`` writes JuDGE-format JSON lines that the
``judge`` importer reads; :func:`generate_cases` yields the ground truth behind each document
(sentences, charges, roles, circumstances, quantities, province) so that the parsers can be checked
against it. Sentences come from the guideline (:mod:`sentencing.guideline`) plus synthetic
province effects and judge-level noise. Same seed, same bytes.
"""

from __future__ import annotations

import argparse
import sys
import time

from sentencing.demo_corpus.generate import (
    DemoCorpusError,
    case_id,
    generate_cases,
    generate_documents,
    generate_pairs,
    write_corpus,
)
from sentencing.demo_corpus.render import SYNTHETIC_MARKER

__all__ = [
    "SYNTHETIC_MARKER",
    "DemoCorpusError",
    "case_id",
    "generate_cases",
    "generate_documents",
    "generate_pairs",
    "register",
    "write_corpus",
]


def register(subparsers: argparse._SubParsersAction) -> None:
    """``sentencing demo-corpus``."""
    from sentencing.config import Settings

    defaults = Settings.model_fields
    p = subparsers.add_parser(
        "demo-corpus",
        help="write the synthetic demo corpus (JuDGE JSON lines)",
        description="Write N synthetic, clearly labelled judgments as JuDGE-format JSON lines.",
    )
    p.add_argument(
        "--cases", type=int, default=defaults["demo_cases"].default, help="number of cases (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=defaults["demo_seed"].default, help="random seed (default %(default)s)")
    p.add_argument("--start", type=int, default=0, help="index of the first case, to generate a corpus in shards")
    p.add_argument("--workers", type=int, default=1, help="processes generating shards in parallel (same output)")
    p.add_argument("--out", required=True, help="output file (.jsonl); written in full, then moved into place")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    for flag, value, least in (
        ("--cases", args.cases, 0), ("--seed", args.seed, 0), ("--start", args.start, 0), ("--workers", args.workers, 1)
    ):
        if value < least:
            print(f"sentencing demo-corpus: {flag} must be at least {least}, got {value}", file=sys.stderr)
            return 2
    began = time.perf_counter()
    try:
        count = write_corpus(args.out, args.cases, args.seed, start=args.start, workers=args.workers)
    except DemoCorpusError as e:
        print(f"sentencing demo-corpus: {e}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - began
    rate = count / seconds if seconds > 0 else float("inf")
    print(f"wrote {count} synthetic cases to {args.out} in {seconds:.1f} s ({rate:,.0f} cases/s)", file=sys.stderr)
    return 0
