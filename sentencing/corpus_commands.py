"""``sentencing parse`` and ``sentencing import``: judgment corpora to case JSON lines or the store.

``import`` is all or nothing per call: if any line of any file is malformed, every error is
printed (file, line, field) and nothing is stored; ``--keep-going`` stores the good lines instead.
Either way the exit status is 1 when there were errors. With ``--workers N`` the parsing runs in N
processes that hand back finished output (the JSON line, the store row), so this process only writes.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import TextIO

from sentencing.importers import IMPORTERS, CaseFormatError, read_encoded_parallel, write_json_lines


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("parse", help="print cases read from judgment files as JSON lines")
    p.add_argument("--format", "-f", required=True, choices=sorted(IMPORTERS), dest="fmt")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--workers", type=int, default=1, help="processes parsing in parallel (default 1)")
    p.set_defaults(func=run_parse)

    i = subparsers.add_parser("import", help="add cases read from judgment files to the case store")
    i.add_argument("--format", "-f", required=True, choices=sorted(IMPORTERS), dest="fmt")
    i.add_argument("files", nargs="+", type=Path, metavar="FILE")
    i.add_argument("--store", type=Path, default=None, help="SQLite case store (default: the configured one)")
    i.add_argument("--keep-going", action="store_true", help="store the good lines even if some are malformed")
    i.add_argument("--workers", type=int, default=1, help="processes parsing in parallel (default 1)")
    i.set_defaults(func=run_import)


def _missing(files: list[Path]) -> list[Path]:
    return [f for f in files if not f.is_file()]


def run_parse(args: argparse.Namespace) -> int:
    if missing := _missing(args.files):
        print(f"error: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    errors: list[CaseFormatError] = []
    sys.stdout.flush()
    binary = getattr(sys.stdout, "buffer", None)  # absent where stdout was swapped for a StringIO
    out = binary if binary is not None else _TextSink(sys.stdout)
    write_json_lines(args.fmt, args.files, out, errors, workers=args.workers)
    out.flush()
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if errors else 0


def run_import(args: argparse.Namespace) -> int:
    from sentencing.config import load_settings
    from sentencing.store import CaseStore, case_row

    if missing := _missing(args.files):
        print(f"error: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    store_path = args.store or load_settings().store_path
    errors: list[CaseFormatError] = []

    class _Abort(Exception):
        pass

    def cases():
        yield from read_encoded_parallel(args.fmt, args.files, case_row, errors, workers=args.workers)
        if errors and not args.keep_going:
            raise _Abort

    with CaseStore(store_path) as store:
        try:
            report = store.add(cases())
        except _Abort:
            for err in errors:
                print(f"error: {err}", file=sys.stderr)
            print(f"{len(errors)} errors; nothing stored (fix the lines or use --keep-going)", file=sys.stderr)
            return 1
        total = store.count()
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    print(f"{store_path}: {report.summary()}, errors {len(errors)}; {total} cases in store, last seq {report.last_seq}")
    return 1 if errors else 0


class _TextSink(io.RawIOBase):
    """UTF-8 bytes written on to a text stream (stdout replaced by a ``StringIO``)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._stream.write(bytes(data).decode())
        return len(data)

    def flush(self) -> None:
        self._stream.flush()
