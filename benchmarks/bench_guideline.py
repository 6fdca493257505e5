"""Guideline engine speed: :func:`sentencing.guideline.calculate` against the original, same run.

    .venv/bin/python -m benchmarks.bench_guideline --cases 2000 --generator 5000

The baseline is the implementation before the speed work, read from git (``--baseline-ref``,
default 668aabf) into a temporary file and imported from there, so nothing is duplicated in the
repository; ``--baseline PATH`` uses a saved copy instead. Prints, for one process (one core):

* that both give identical ``model_dump(mode="json")`` for every input (a benchmark of a wrong
  answer is worthless);
* CPU µs per defendant: the mean (per chunk of 50 defendants the fastest of ``--repeat`` passes,
  the implementations alternating, because the machine is shared) and p50/p99 of single calls, for the
  demo corpus (:func:`sentencing.demo_corpus.generate_cases`), its typical defendants (one charge,
  at most four circumstances; the target is ≤ 30 µs) and the real judge + lawbench defendants
  when ``../shared/data`` is present;
* with ``--generator N``: :func:`sentencing.demo_corpus.write_corpus` of N cases in a fresh
  process per implementation, cases/s per core (the target is ≥ 5,000/s).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from sentencing.case import Case, Defendant
from sentencing.charges import default_catalogue

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
TARGET_US = 30.0
TARGET_CASES = 5000.0

Pair = tuple[Defendant, Case]


def load_baseline(path: Path) -> ModuleType:
    """The original guideline module, imported from ``path`` under its own name."""
    spec = importlib.util.spec_from_file_location("guideline_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def baseline_file(ref: str, directory: Path) -> Path:
    out = directory / "guideline_baseline.py"
    text = subprocess.run(
        ["git", "show", f"{ref}:sentencing/guideline.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    out.write_text(text, encoding="utf-8")
    return out


def demo_pairs(n: int, seed: int) -> list[Pair]:
    from sentencing.demo_corpus import generate_cases

    pairs = []
    for case in generate_cases(n, seed):
        case = case.before_judgment()
        pairs += [(d, case) for d in case.defendants]
    return pairs


def real_pairs() -> list[Pair]:
    from sentencing.importers import read_cases

    pairs: list[Pair] = []
    for fmt, path in (("judge", "judge/judgments.jsonl"), ("lawbench", "lawbench/term_prediction.jsonl")):
        for case in read_cases(fmt, [SHARED_DATA / path], []):
            case = case.before_judgment()
            pairs += [(d, case) for d in case.defendants]
    return pairs


def typical(pairs: list[Pair]) -> list[Pair]:
    return [(d, c) for d, c in pairs if len(d.charges) == 1 and len(d.circumstances) <= 4]


def mismatches(pairs: list[Pair], new: Callable, old: Callable) -> int:
    return sum(new(d, c).model_dump(mode="json") != old(d, c).model_dump(mode="json") for d, c in pairs)


def single_calls(fn: Callable, pairs: list[Pair]) -> list[float]:
    clock = time.process_time_ns
    out = []
    for d, c in pairs:
        t = clock()
        fn(d, c)
        out.append((clock() - t) / 1000)
    return sorted(out)


def mean_pass(fn: Callable, pairs: list[Pair]) -> float:
    t = time.process_time()
    for d, c in pairs:
        fn(d, c)
    return (time.process_time() - t) / len(pairs) * 1e6


def measure(label: str, pairs: list[Pair], impls: dict[str, Callable], repeat: int, chunk: int = 50) -> None:
    """Mean CPU µs per defendant: chunks of defendants, the implementations alternating on each
    chunk, the fastest of ``repeat`` tries per chunk kept (the machine is shared; a burst of other
    work must not land on one side only). Then p50/p99 of single calls."""
    if not pairs:
        return
    for fn in impls.values():  # warm: catalogue plans, caches of both
        mean_pass(fn, pairs)
    gc.collect()
    chunks = [pairs[i : i + chunk] for i in range(0, len(pairs), chunk)]
    totals = dict.fromkeys(impls, 0.0)
    for part in chunks:
        best = dict.fromkeys(impls, float("inf"))
        for _ in range(repeat):
            for name, fn in impls.items():
                best[name] = min(best[name], mean_pass(fn, part) * len(part))
        for name in impls:
            totals[name] += best[name]
    means = {name: total / len(pairs) for name, total in totals.items()}
    calls = {name: single_calls(fn, pairs) for name, fn in impls.items()}
    print(f"{label}: {len(pairs)} defendants")
    for name in impls:
        ts = calls[name]
        p50, p99 = ts[len(ts) // 2], ts[min(len(ts) - 1, int(len(ts) * 0.99))]
        print(f"  {name:<9} mean {means[name]:7.1f} µs   p50 {p50:7.1f} µs   p99 {p99:7.1f} µs  (CPU per defendant)")
    b, n = means["baseline"], means["new"]
    print(f"  speed-up  {b / n:.1f}× on the mean;  vs target {TARGET_US:.0f} µs: {n / TARGET_US:.2f}×")


_GENERATE = """
import sys, tempfile, time
from pathlib import Path
if sys.argv[2]:
    import importlib.util
    spec = importlib.util.spec_from_file_location("sentencing.guideline", sys.argv[2])
    module = importlib.util.module_from_spec(spec)
    sys.modules["sentencing.guideline"] = module
    spec.loader.exec_module(module)
from sentencing.charges import default_catalogue
from sentencing.demo_corpus import write_corpus
default_catalogue()
n = int(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    t = time.process_time()
    write_corpus(Path(tmp) / "demo.jsonl", n, 20261127)
    print(time.process_time() - t)
"""


def generator(n: int, baseline: Path) -> None:
    """write_corpus in a fresh process per implementation (the baseline replaces the module)."""
    cpu = {}
    for name, path in (("baseline", str(baseline)), ("new", "")):
        out = subprocess.run(
            [sys.executable, "-c", _GENERATE, str(n), path], cwd=ROOT, check=True, capture_output=True, text=True
        )
        cpu[name] = float(out.stdout.strip().splitlines()[-1])
    print(f"generator: write_corpus of {n} cases, one process each")
    for name, seconds in cpu.items():
        print(f"  {name:<9} cpu {seconds:6.2f} s  {n / seconds:7.0f} cases/s per core  "
              f"({n / seconds / TARGET_CASES:.2f}× of the {TARGET_CASES:,.0f}/s target)")
    print(f"  speed-up  {cpu['baseline'] / cpu['new']:.2f}×")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="demo-corpus cases to take defendants from")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--repeat", type=int, default=5, help="passes per chunk and implementation; the best is kept")
    parser.add_argument("--baseline", type=Path, help="a saved copy of the original sentencing/guideline.py")
    parser.add_argument("--baseline-ref", default="668aabf", help="git revision of the original (default 668aabf)")
    parser.add_argument("--generator", type=int, default=0, help="also time write_corpus of this many cases")
    args = parser.parse_args(argv)

    from sentencing.guideline import calculate

    with tempfile.TemporaryDirectory() as tmp:
        path = args.baseline or baseline_file(args.baseline_ref, Path(tmp))
        old = load_baseline(path).calculate
        default_catalogue()
        impls = {"baseline": old, "new": calculate}
        demo = demo_pairs(args.cases, args.seed)
        real = real_pairs() if (SHARED_DATA / "judge" / "judgments.jsonl").is_file() else []
        wrong = mismatches(demo + real, calculate, old)
        print(f"identical results: {len(demo) + len(real) - wrong}/{len(demo) + len(real)} defendants"
              + ("" if not wrong else f"  ({wrong} DIFFER)"))
        measure("demo corpus", demo, impls, args.repeat)
        measure("demo corpus, typical (1 charge, ≤ 4 circumstances)", typical(demo), impls, args.repeat)
        measure("real judge + lawbench", real, impls, args.repeat)
        if args.generator:
            generator(args.generator, path)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
