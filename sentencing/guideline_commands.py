"""``sentencing guideline`` and ``sentencing charges``: the guideline engine from the command line.

``guideline`` prints one JSON line per defendant (or, with ``--text``, the Chinese explanation);
only what is known before judgment is used (:meth:`Case.before_judgment`). ``charges`` lists or
resolves the catalogue, and ``charges derive`` prints the statutory tiers an article states,
the starting material for a new catalogue entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sentencing.charges import CatalogueError, ChargeCatalogue, derive_tiers_from_article, load_catalogue


def register(subparsers: argparse._SubParsersAction) -> None:
    g = subparsers.add_parser("guideline", help="the sentencing-guideline calculation for each defendant of a file")
    g.add_argument("--format", "-f", required=True, dest="fmt", help="input format: judge, lawbench, cail2018, cases")
    g.add_argument("files", nargs="+", type=Path, metavar="FILE")
    g.add_argument("--text", action="store_true", help="print the Chinese explanation instead of JSON lines")
    g.add_argument("--ruleset", type=Path, default=None, help="charge catalogue TOML (default: the configured one)")
    g.add_argument("--provinces", type=Path, default=None, help="provincial thresholds TOML")
    g.set_defaults(func=run_guideline)

    c = subparsers.add_parser("charges", help="list the charge catalogue, or resolve charge names")
    c.add_argument("names", nargs="*", metavar="NAME", help="charge names to resolve (default: list all)")
    c.add_argument("--ruleset", type=Path, default=None)
    c.add_argument("--derive", type=Path, default=None, metavar="ARTICLES_JSONL", help="print the tiers of --article")
    c.add_argument("--article", type=str, default=None, help="article number (with --derive), e.g. 264")
    c.set_defaults(func=run_charges)


def _catalogue(ruleset: Path | None, provinces: Path | None = None) -> ChargeCatalogue:
    """The catalogue named on the command line, else the configured one (``LIANGXING_RULESET``)."""
    if ruleset is None and provinces is None:
        from sentencing.config import load_settings

        ruleset = load_settings().ruleset
    return load_catalogue(ruleset, provinces)


def run_guideline(args: argparse.Namespace) -> int:
    from sentencing.guideline import calculate
    from sentencing.importers import IMPORTERS, CaseFormatError, read_cases

    if args.fmt not in IMPORTERS:
        print(f"error: --format: unknown format {args.fmt!r}; known: {', '.join(sorted(IMPORTERS))}", file=sys.stderr)
        return 2
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        catalogue = _catalogue(args.ruleset, args.provinces)
    except CatalogueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    errors: list[CaseFormatError] = []
    out = sys.stdout
    for case in read_cases(args.fmt, args.files, errors):
        known = case.before_judgment()
        for defendant in known.defendants:
            result = calculate(defendant, known, catalogue=catalogue)
            if args.text:
                out.write(f"# {case.id}\n{result.explain_text()}\n\n")
            else:
                payload = {"case_id": case.id, **result.model_dump(mode="json")}
                out.write(json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n")
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if errors else 0


def run_charges(args: argparse.Namespace) -> int:
    if args.derive is not None:
        return _derive(args.derive, args.article)
    try:
        catalogue = _catalogue(args.ruleset)
    except CatalogueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.names:
        print(f"# {catalogue.version}: {len(catalogue.charges())} charges")
        for spec in catalogue.charges():
            tiers = "；".join(t.label for t in spec.tiers)
            mark = "derived" if spec.derived else (spec.guideline or "")
            print(f"{spec.name}\t刑法第{spec.article}条\t{spec.family.value}\t{mark}\t{tiers}")
        return 0
    status = 0
    for name in args.names:
        spec = catalogue.resolve(name)
        if spec is None:
            print(f"{name}\t(unknown: not in catalogue {catalogue.version})")
            status = 1
        else:
            print(f"{name}\t→ {spec.name}\t刑法第{spec.article}条\t{spec.family.value}")
    return status


def _derive(path: Path, article: str | None) -> int:
    from sentencing.numerals import NumeralError, parse_chinese_integer

    if article is None:
        print("error: --article is required with --derive", file=sys.stderr)
        return 2
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    wanted = article.strip().removeprefix("第").removesuffix("条")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            name = str(row["name"]).rsplit("第", 1)[-1].removesuffix("条")
            text = str(row["text"])
        except (ValueError, KeyError, TypeError) as e:
            print(f"error: {path}:{number}: expected a JSON object with name and text ({e})", file=sys.stderr)
            return 1
        try:
            matches = name == wanted or str(parse_chinese_integer(name)) == wanted
        except NumeralError:
            matches = False
        if matches:
            for clause, floor, ceiling, fine in derive_tiers_from_article(text):
                row = {"clause": clause, "floor": floor, "ceiling": ceiling, "fine": fine.value}
                print(json.dumps(row, ensure_ascii=False))
            return 0
    print(f"error: article {article} not found in {path}", file=sys.stderr)
    return 1
