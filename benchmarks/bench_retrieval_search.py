"""Per-query latency of ``RetrievalIndex.search`` / ``.cohort`` and index load memory, on demo cases.

Builds (or reuses) an index of ``--cases`` demo cases in ``--dir``, then in a fresh process loads
it, records the RSS the load adds, and times ``--queries`` unseen cases (every defendant, one
FAISS thread, as the service runs): hybrid search as the service calls it (charge filter, other
provinces only, the province spread, k=10, the guideline result passed in), and the cohort over
the whole country. The first pass over the queries meets every filter for the first time (the
filter cache is cold); the second pass, timed again, is the steady state.

``--stages`` adds where a search's CPU time goes: the query profile, encoding, the FAISS search
(filter cached), and the rest (filter lookup, fusion, spread, hit building), each stage timed
just before a whole search of the same query. ``--baseline-root`` times another
source tree (e.g. the code before a change: ``git archive HEAD | tar -x -C /tmp/base``) on the
same index in the same run, alternating rounds of the two (each first in every other round) so
that machine load hits both alike.

Usage:  .venv/bin/python -m benchmarks.bench_retrieval_search --cases 3000 --dir /tmp/idx3k
        .venv/bin/python -m benchmarks.bench_retrieval_search --dir /tmp/scale/idx1m-b/index \\
            --queries 150 --stages --baseline-root /tmp/base --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(n: int, seed: int, directory: Path) -> None:
    from retrieval.search import RetrievalIndex
    from sentencing.config import load_settings
    from sentencing.demo_corpus import generate_cases

    t = time.perf_counter()
    cases = list(generate_cases(n, seed))
    print(f"generated {n:,} demo cases in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    index = RetrievalIndex.build(iter(cases), directory, settings=load_settings())
    print(f"build: {len(index):,} rows in {time.perf_counter() - t:.1f} s ({index.info()['factory']})")


def _percentiles(ms: list[float], name: str) -> dict[str, float]:
    return {f"{name}_p50_ms": float(np.percentile(ms, 50)), f"{name}_p99_ms": float(np.percentile(ms, 99)),
            f"{name}_mean_ms": float(np.mean(ms))}


def query(directory: Path, n_queries: int, seed: int, stages: bool) -> dict[str, float]:
    import faiss

    from retrieval.search import RetrievalIndex
    from retrieval.text import case_document
    from sentencing.demo_corpus import generate_cases
    from sentencing.guideline import calculate

    faiss.omp_set_num_threads(1)
    cases = [c for c in generate_cases(n_queries * 2, seed + 1, start=10_000_000) if c.province][:n_queries]
    queries = []
    for c in cases:
        for d in c.defendants:
            try:
                g = calculate(d, c)
            except (ValueError, KeyError, LookupError):
                g = None
            queries.append((c, d, g))
    base = rss_mb()
    t = time.perf_counter()
    index = RetrievalIndex.load(directory)
    load_s = time.perf_counter() - t
    load_rss = rss_mb() - base
    for c, d, g in queries[:5]:  # warm-up: first-touch page faults, tokenizer
        index.search(c, d, k=10, guideline=g)

    cpu: dict[str, list[float]] = {}

    def timed(fn, name: str) -> list[float]:
        """Wall ms per call; the thread's CPU ms per call go to ``cpu[name]`` (less moved by other
        processes on a shared machine than wall time)."""
        out, used = [], []
        for c, d, g in queries:
            t, u = time.perf_counter(), time.thread_time()
            fn(c, d, g)
            out.append((time.perf_counter() - t) * 1000)
            used.append((time.thread_time() - u) * 1000)
        cpu[name] = used
        return out

    def search(c, d, g):
        return index.search(c, d, k=10, province_scope="other", same_charge=True, mode="hybrid", guideline=g)

    def cohort(c, d, g):
        return index.cohort(c, d, province_scope="any", guideline=g)

    result: dict[str, float] = {"rows": len(index), "load_s": load_s, "load_rss_mb": load_rss,
                                "searches": len(queries), "source": str(Path(sys.modules["retrieval"].__file__).parent)}
    for name, fn in (("search_cold", search), ("cohort_cold", cohort), ("search", search), ("cohort", cohort)):
        result |= _percentiles(timed(fn, name), name)
        result |= _percentiles(cpu[name], name + "_cpu")
    if stages:  # thread CPU ms of each stage, and of the whole search right after on the same query
        from retrieval.search import RowSelection  # private stages: a baseline tree older than it fails here only

        parts: dict[str, list[float]] = {"profile": [], "encode": [], "faiss": [], "search": []}
        clock = time.thread_time
        for c, d, g in queries:
            t0 = clock()
            qc, qd, profile = index._query(c, d, g)
            t1 = clock()
            vec = index.encoder.encode([case_document(qc, qd)])
            t2 = clock()
            allowed = index._row_filter(profile, RowSelection(scope="other", same_charge=True))
            if allowed.n_allowed:
                index.vectors.search(vec, min(allowed.n_allowed, 200), allowed, index.knobs)
            t3 = clock()
            search(c, d, g)
            t4 = clock()
            for name, ms in (("profile", t1 - t0), ("encode", t2 - t1), ("faiss", t3 - t2), ("search", t4 - t3)):
                parts[name].append(ms * 1000)
        for name, ms in parts.items():
            result[f"stage_{name}_cpu_mean_ms"] = float(np.mean(ms))
    result["rss_after_queries_mb"] = rss_mb() - base
    return result


def run_query(root: Path, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--dir", str(args.dir), "--query-only",
           "--queries", str(args.queries), "--seed", str(args.seed), "--root", str(root)]
    if args.stages:
        cmd.append("--stages")
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(name: str, r: dict[str, float]) -> None:
    print(f"[{name}] {r['source']}: {r['rows']:,} rows, load {r['load_s']:.2f} s, +{r['load_rss_mb']:,.0f} MB RSS "
          f"(+{r['rss_after_queries_mb']:,.0f} MB after queries), {r['searches']} defendants")
    for what in ("search_cold", "search", "cohort_cold", "cohort"):
        print(f"  {what:12s} p50 {r[what + '_p50_ms']:7.2f} ms  p99 {r[what + '_p99_ms']:7.2f} ms  "
              f"mean {r[what + '_mean_ms']:7.2f} ms   CPU p50 {r[what + '_cpu_p50_ms']:7.2f} ms  "
              f"mean {r[what + '_cpu_mean_ms']:7.2f} ms")
    if "stage_faiss_cpu_mean_ms" in r:
        known = sum(r[f"stage_{s}_cpu_mean_ms"] for s in ("profile", "encode", "faiss"))
        print(f"  search CPU by stage (mean ms): whole {r['stage_search_cpu_mean_ms']:.2f} = " + "  ".join(
            f"{s} {r[f'stage_{s}_cpu_mean_ms']:.2f}" for s in ("profile", "encode", "faiss"))
            + f"  rest (filter, fusion, spread, hits) {r['stage_search_cpu_mean_ms'] - known:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=100, help="query cases (all their defendants are timed)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--dir", type=Path, required=True, help="index directory (built when missing)")
    parser.add_argument("--stages", action="store_true", help="break a search's time down by stage")
    parser.add_argument("--baseline-root", type=Path, help="another source tree to time on the same index")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (with --baseline-root)")
    parser.add_argument("--query-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query_only:
        print(json.dumps(query(args.dir, args.queries, args.seed, args.stages)))
        return
    if not (args.dir / "manifest.json").is_file():
        build(args.cases, args.seed, args.dir)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "this tree": []}
    trees = [("this tree", REPO)]
    if args.baseline_root is not None:
        trees.insert(0, ("baseline", args.baseline_root.resolve()))
    for round_no in range(max(1, args.rounds)):
        # each tree goes first in every other round: the second process of a round ran slower by
        # about a tenth on unchanged code (the first one's pages, caches and frequency before it)
        for name, root in trees if round_no % 2 == 0 else trees[::-1]:
            results[name].append(run_query(root, args))
            report(name, results[name][-1])
        print(f"load average: {os.getloadavg()[0]:.2f}")
    if results["baseline"]:
        print("baseline / this tree (median over rounds):")
        for key in ("search_cold_p50_ms", "search_cold_p99_ms", "search_p50_ms", "search_p99_ms",
                    "search_cpu_p50_ms", "search_cpu_mean_ms", "cohort_cold_p50_ms", "cohort_cold_p99_ms",
                    "cohort_p50_ms", "cohort_p99_ms", "cohort_cpu_p50_ms", "cohort_cpu_mean_ms"):
            b = float(np.median([r[key] for r in results["baseline"]]))
            t = float(np.median([r[key] for r in results["this tree"]]))
            print(f"  {key:20s} {b:8.2f} -> {t:8.2f} ms  ({b / t:.2f}x)")


if __name__ == "__main__":
    main()
