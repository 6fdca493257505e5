"""``sentencing retrieval …``: build, inspect and query the similar-case index from the shell.

    sentencing retrieval build [--store DB | --format judge FILE…] [--index-dir DIR] [--encoder-dir DIR]
    sentencing retrieval search CASE.json [--defendant NAME] [-k 10] [--scope other|own|any] [--mode hybrid]
    sentencing retrieval cohort CASE.json [--defendant NAME] [--scope any]
    sentencing retrieval add|delete …, sentencing retrieval info
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from sentencing.case import Case, Defendant


def register(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser("retrieval", help="similar-case index: build, search, cohort statistics")
    sub = r.add_subparsers(dest="retrieval_command", required=True, metavar="ACTION")

    b = sub.add_parser("build", help="build the index from the case store or judgment files")
    _source_args(b)
    b.add_argument("--encoder-dir", type=Path, help="a sentence-transformers model directory (default: train one)")
    b.add_argument("--factory", help="FAISS index-factory string (default: chosen by corpus size)")
    b.set_defaults(func=run_build)

    a = sub.add_parser("add", help="add cases to an existing index (a case already there is replaced)")
    _source_args(a)
    a.set_defaults(func=run_add)

    d = sub.add_parser("delete", help="remove cases from the index by case id")
    d.add_argument("case_ids", nargs="+", metavar="CASE_ID")
    d.add_argument("--index-dir", type=Path)
    d.set_defaults(func=run_delete)

    for name, func, helptext in (("search", run_search, "similar past cases for one defendant"),
                                 ("cohort", run_cohort, "cohort statistics for one defendant")):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("case", type=Path, help="case JSON file (the project's Case schema), or - for stdin")
        q.add_argument("--defendant", help="defendant name (default: the first)")
        q.add_argument("--index-dir", type=Path)
        q.add_argument("--scope", choices=("other", "own", "any"), default="other" if name == "search" else "any")
        if name == "search":
            q.add_argument("-k", type=int, default=10)
            q.add_argument("--mode", choices=("hybrid", "dense", "sparse"), default="hybrid")
            q.add_argument("--any-charge", action="store_true", help="do not restrict to the same charge")
            q.add_argument("--date-from", type=dt.date.fromisoformat)
            q.add_argument("--date-to", type=dt.date.fromisoformat)
        q.set_defaults(func=func)

    i = sub.add_parser("info", help="print the index manifest")
    i.add_argument("--index-dir", type=Path)
    i.set_defaults(func=run_info)


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index-dir", type=Path, help="index directory (default: the configured one)")
    p.add_argument("--store", type=Path, help="SQLite case store (default: the configured one)")
    p.add_argument("--format", "-f", dest="fmt", help="read judgment files of this format instead of the store")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE")


def _index_dir(args: argparse.Namespace) -> Path:
    from sentencing.config import load_settings

    return args.index_dir or load_settings().index_path


def _cases(args: argparse.Namespace) -> Iterator[Case]:
    from sentencing.config import load_settings

    if args.fmt:
        from sentencing.importers import read_cases

        if not args.files:
            raise ValueError("--format needs at least one FILE")
        yield from read_cases(args.fmt, args.files)
        return
    if args.files:
        raise ValueError("FILE arguments need --format")
    from sentencing.store import CaseStore

    store_path = args.store or load_settings().store_path
    if not Path(store_path).is_file():
        raise ValueError(f"case store {store_path} does not exist (import cases first)")
    with CaseStore(store_path) as store:
        yield from store.iter_cases()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_build(args: argparse.Namespace) -> int:
    from retrieval.search import RetrievalIndex

    try:
        index = RetrievalIndex.build(_cases(args), _index_dir(args), encoder_dir=args.encoder_dir, factory=args.factory)
    except (ValueError, OSError, RuntimeError) as e:
        return _fail(str(e))
    print(json.dumps(index.info(), ensure_ascii=False, indent=1, default=str))
    return 0


def run_add(args: argparse.Namespace) -> int:
    from retrieval.search import RetrievalIndex

    try:
        index = RetrievalIndex.load(_index_dir(args))
        added = index.add(_cases(args))
        index.save()
    except (ValueError, OSError, RuntimeError) as e:
        return _fail(str(e))
    print(f"added {added} defendants; {len(index)} indexed")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from retrieval.search import RetrievalIndex

    try:
        index = RetrievalIndex.load(_index_dir(args))
        removed = index.delete(args.case_ids)
        index.save()
    except (ValueError, OSError, RuntimeError) as e:
        return _fail(str(e))
    print(f"removed {removed} defendants; {len(index)} indexed")
    return 0


def _read_query(args: argparse.Namespace) -> tuple[Case, Defendant]:
    text = sys.stdin.read() if str(args.case) == "-" else args.case.read_text(encoding="utf-8")
    try:
        case = Case.model_validate_json(text)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "case"
        raise ValueError(f"{args.case}: {field}: {err['msg']}") from None
    if not case.defendants:
        raise ValueError(f"{args.case}: defendants: the case has no defendant")
    if args.defendant is None:
        return case, case.defendants[0]
    for d in case.defendants:
        if d.name == args.defendant:
            return case, d
    raise ValueError(f"{args.case}: defendants: no defendant named {args.defendant!r}")


def run_search(args: argparse.Namespace) -> int:
    from retrieval.search import RetrievalIndex

    try:
        case, defendant = _read_query(args)
        index = RetrievalIndex.load(_index_dir(args))
        hits = index.search(
            case, defendant, k=args.k, province_scope=args.scope, same_charge=not args.any_charge,
            date_from=args.date_from, date_to=args.date_to, mode=args.mode,
        )
    except (ValueError, OSError, RuntimeError) as e:
        return _fail(str(e))
    for h in hits:
        print(h.model_dump_json())
    return 0


def run_cohort(args: argparse.Namespace) -> int:
    from retrieval.search import RetrievalIndex

    try:
        case, defendant = _read_query(args)
        stats = RetrievalIndex.load(_index_dir(args)).cohort(case, defendant, province_scope=args.scope)
    except (ValueError, OSError, RuntimeError) as e:
        return _fail(str(e))
    print(stats.model_dump_json(indent=1))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from retrieval.search import RetrievalIndex

    try:
        index = RetrievalIndex.load(_index_dir(args))
    except (ValueError, OSError, RuntimeError) as e:
        return _fail(str(e))
    print(json.dumps(index.info(), ensure_ascii=False, indent=1, default=str))
    return 0
