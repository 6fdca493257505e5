"""``sentencing``: the command line of liangxing.

Each command group lives beside the code it drives and exposes ``register(subparsers)``; this
module only assembles them, importing each group lazily so that ``sentencing parse`` does not
load LightGBM or FAISS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules providing ``register(subparsers) -> None``; each adds its subcommands with
# ``set_defaults(func=...)`` where ``func(args) -> int`` is the exit status.
COMMAND_MODULES: tuple[str, ...] = (
    "retrieval.commands",
    "sentencing.corpus_commands",
    "sentencing.demo_corpus",
    "sentencing.guideline_commands",
    "serve.commands",
    "training.commands",
    "training.distributed.commands",
    "training.retrain_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentencing", description="量刑: sentencing recommendations")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
