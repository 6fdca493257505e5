"""Parse + import throughput of the judgment corpus pipeline, against a JSON-decoding baseline.

    .venv/bin/python -m benchmarks.bench_parse_import --cases 100000 --workers 2
    .venv/bin/python -m benchmarks.bench_parse_import --cases 20000 --baseline-root /tmp/old-tree  # A/B

Input: the synthetic demo corpus (JuDGE-style lines, ``sentencing.demo_corpus``), generated once
into a cache file; with ``--real`` (or when the generator is missing) the 292 real JuDGE judgments
repeated with fresh ids. Prints, each measured in this run:

* baseline: ``json.loads`` of every line (the floor any importer pays);
* parse, one process: :func:`sentencing.importers.read_cases` on a sample, cases/s per core;
* parse, ``--workers`` processes, cases sent back as :class:`~sentencing.case.Case` objects
  (:func:`~sentencing.importers.read_cases_parallel`): cases/s over the whole file;
* parse, ``--workers`` processes, fast path: workers write finished JSON lines
  (:func:`~sentencing.importers.write_json_lines`: each worker reads its own byte range of the
  file and spools its lines for the kernel to copy on, here to ``os.devnull``): what
  ``sentencing parse --workers N`` does; the target is ≥ 2,000/s on 2 cores;
* import: :meth:`sentencing.store.CaseStore.add` of parsed cases into a fresh store, cases/s;
* parse + import end to end through ``Case`` objects (the old path), and through the fast path
  (workers make the store rows, :func:`sentencing.store.case_row`; this process only runs SQL):
  the figure a user of ``sentencing import --workers N`` sees.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sentencing.case import Case
from sentencing.importers import _judge_line, read_cases_parallel, read_encoded_parallel, write_json_lines
from sentencing.store import CaseRow, CaseStore, case_row

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "judge" / "judgments.jsonl"
CHUNK = 500


def _demo_shard(args: tuple[str, int, int, int]) -> str:
    from sentencing.demo_corpus import write_corpus

    path, n, seed, start = args
    write_corpus(path, n, seed, start=start)
    return path


def prepare_input(n: int, seed: int, real: bool, cache: Path, workers: int) -> tuple[Path, str]:
    """A JuDGE-format file of ``n`` lines; generated once and kept in ``cache``."""
    source = "real judgments repeated" if real else "synthetic demo corpus"
    if not real:
        try:
            import sentencing.demo_corpus  # noqa: F401
        except ImportError:
            real, source = True, "real judgments repeated (demo corpus generator not found)"
    out = cache / (f"bench_real_{n}.jsonl" if real else f"bench_demo_{n}_{seed}.jsonl")
    if out.is_file():
        return out, source
    began = time.perf_counter()
    if real:
        rows = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]
        with open(out, "w", encoding="utf-8") as fh:
            for k in range(n):
                row = dict(rows[k % len(rows)], text_id=f"{rows[k % len(rows)]['text_id']}-{k}")
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        per = -(-n // workers)
        shards = [(str(out) + f".part{w}", min(per, n - w * per), seed, w * per) for w in range(workers)]
        with mp.Pool(workers) as pool:
            parts = pool.map(_demo_shard, [s for s in shards if s[1] > 0])
        with open(out, "wb") as fh:
            for part in parts:
                fh.write(Path(part).read_bytes())
                os.unlink(part)
    print(f"input: {n} lines of {source}, written in {time.perf_counter() - began:.1f} s to {out}")
    return out, source


def _chunks(path: Path, limit: int | None = None) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if limit is not None and number > limit:
                break
            chunk.append((number, line))
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _parse_chunk(chunk: list[tuple[int, str]]) -> list[Case]:
    path = Path("bench")
    return [_judge_line(path, number, line) for number, line in chunk]


def parallel_cases(path: Path, workers: int) -> Iterator[Case]:
    """Cases parsed in ``workers`` processes and sent back as objects (the old import path)."""
    return read_cases_parallel("judge", [path], workers=workers)


def _timed_workers(run: Callable[[], int]) -> tuple[int, float, float]:
    """``run()``'s count, its wall time and the CPU time its worker processes used."""
    began = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    count = run()
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return count, elapsed, (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)


def _write_json_lines(path: Path, workers: int) -> int:
    """What ``sentencing parse --workers N`` runs, writing to ``os.devnull``."""
    with open(os.devnull, "wb") as out:
        return write_json_lines("judge", [path], out, workers=workers)


def _import(db: Path, items: Iterable[Case] | Iterable[CaseRow], label: str) -> float:
    """Parse + import into a fresh store; prints and returns cases/s."""
    with CaseStore(db) as store:
        began = time.perf_counter()
        report = store.add(items)
        elapsed = time.perf_counter() - began
    size = db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob(db.name + "-*"))
    rate = report.added / elapsed
    print(f"pipeline  parse + import, {label} {rate:10.0f} cases/s  ({report.added} cases in {elapsed:.1f} s; "
          f"store {size / 2**20:.0f} MiB, {size / max(1, report.added):.0f} bytes/case)")
    return rate


# Run in a fresh interpreter with another source tree first on sys.path: that tree's ``sentencing
# parse --workers N`` path, as it stood (``write_json_lines`` where it exists, else the JSON lines
# sent back through the pool), with this process's and its workers' CPU from getrusage.
_AB_CHILD = """
import os, resource, sys, time
root, path, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, root)
from sentencing import importers
from sentencing.case import Case
r0 = resource.getrusage(resource.RUSAGE_SELF)
began = time.perf_counter()
with open(os.devnull, "wb") as out:
    if hasattr(importers, "write_json_lines"):
        n = importers.write_json_lines("judge", [path], out, workers=workers)
    else:
        n = 0
        for line in importers.read_encoded_parallel("judge", [path], Case.to_json_line, workers=workers):
            out.write((line + "\\n").encode())
            n += 1
wall = time.perf_counter() - began
r1 = resource.getrusage(resource.RUSAGE_SELF)
rc = resource.getrusage(resource.RUSAGE_CHILDREN)
parent = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
print(n, wall, parent, rc.ru_utime + rc.ru_stime)
"""


def compare_trees(baseline_root: Path, path: Path, workers: int, rounds: int) -> None:
    """The JSON-lines parse of ``path`` under another source tree and under this one, alternately."""
    here = Path(__file__).resolve().parents[1]
    print(f"A/B on {path.name}, {workers} workers, {rounds} alternating rounds: "
          f"baseline {baseline_root}, this tree {here}")
    for r in range(rounds):
        for label, root in (("baseline ", baseline_root), ("this tree", here)):
            out = subprocess.run([sys.executable, "-c", _AB_CHILD, str(root), str(path), str(workers)],
                                 capture_output=True, text=True, check=True).stdout.split()
            n, wall, parent, children = int(out[0]), *map(float, out[1:])
            print(f"  round {r + 1} {label}  {n / wall:6.0f} cases/s  parent {parent / n * 1e6:4.0f} µs/case  "
                  f"workers {children / n * 1e6:5.0f} µs/case  (load {os.getloadavg()[0]:.1f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=5_000, help="cases for the one-process figure")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--real", action="store_true", help="repeat the real JuDGE judgments instead")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N lines of the input")
    parser.add_argument("--baseline-root", type=Path, default=None,
                        help="instead: A/B of the JSON-lines parse against this source tree (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds for --baseline-root")
    args = parser.parse_args(argv)
    path, _ = prepare_input(args.cases, args.seed, args.real, args.cache, args.workers)
    if args.limit is not None and args.limit < args.cases:
        head = args.cache / f"{path.stem}_head{args.limit}.jsonl"
        with open(path, encoding="utf-8") as src, open(head, "w", encoding="utf-8") as dst:
            for _, line in zip(range(args.limit), src, strict=False):
                dst.write(line)
        path = head
        print(f"using the first {args.limit} lines")
    print(f"cpu cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    if args.baseline_root is not None:
        compare_trees(args.baseline_root, path, args.workers, args.rounds)
        return 0

    began = time.perf_counter()
    n_lines = sum(1 for line in open(path, encoding="utf-8") if json.loads(line))
    baseline = n_lines / (time.perf_counter() - began)
    print(f"baseline  json.loads           {baseline:10.0f} lines/s")

    sample = min(args.sample, n_lines)
    began = time.perf_counter()
    cpu = time.process_time()
    parsed = sum(len(_parse_chunk(chunk)) for chunk in _chunks(path, sample))
    one = parsed / (time.perf_counter() - began)
    one_cpu = parsed / (time.process_time() - cpu)
    print(f"parse     1 process            {one:10.0f} cases/s  ({one_cpu:.0f}/s of CPU time; "
          f"{baseline / one:.0f}x the baseline's cost)")

    count, elapsed, worker_cpu = _timed_workers(lambda: sum(1 for _ in parallel_cases(path, args.workers)))
    many = count / elapsed
    per_core = count / worker_cpu if worker_cpu > 0 else float("nan")
    print(f"parse     {args.workers} processes, Case    {many:10.0f} cases/s  ({many / one:.2f}x one process; "
          f"workers used {worker_cpu:.0f} s CPU: {per_core:.0f} cases per CPU-second)")

    count, elapsed, worker_cpu = _timed_workers(lambda: _write_json_lines(path, args.workers))
    fast = count / elapsed
    per_core = count / worker_cpu if worker_cpu > 0 else float("nan")
    print(f"parse     {args.workers} processes, JSON    {fast:10.0f} cases/s  ({fast / one:.2f}x one process, "
          f"{fast / many:.2f}x sending Case objects; target 2000; workers used {worker_cpu:.0f} s CPU: "
          f"{per_core:.0f} cases per CPU-second, {per_core * args.workers:.0f}/s if {args.workers} cores were free)")

    with tempfile.TemporaryDirectory() as tmp:
        cases = [c for chunk in _chunks(path, min(20_000, n_lines)) for c in _parse_chunk(chunk)]
        with CaseStore(Path(tmp) / "a.sqlite") as store:
            began = time.perf_counter()
            report = store.add(cases)
            store_rate = report.added / (time.perf_counter() - began)
            began = time.perf_counter()
            again = store.add(cases)
            dup_rate = again.unchanged / (time.perf_counter() - began)
            began = time.perf_counter()
            streamed = sum(1 for _ in store.iter_cases(batch_size=1000))
            read_rate = streamed / (time.perf_counter() - began)
        print(f"store     add (new)            {store_rate:10.0f} cases/s  over {report.added} cases")
        print(f"store     add (duplicates)     {dup_rate:10.0f} cases/s")
        print(f"store     iter_cases           {read_rate:10.0f} cases/s")
        del cases
        old_rate = _import(Path(tmp) / "b.sqlite", parallel_cases(path, args.workers), "through Case objects")
        fast_rate = _import(
            Path(tmp) / "c.sqlite", read_encoded_parallel("judge", [path], case_row, workers=args.workers),
            "fast path (rows)  ",
        )
        print(f"pipeline  fast path / Case objects: {fast_rate / old_rate:.2f}x")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
