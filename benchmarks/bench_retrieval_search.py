"""Per-query latency of ``RetrievalIndex.search`` / ``.cohort`` and index load memory, on demo cases.

Builds (or reuses) an index of ``--cases`` demo cases in ``--dir``, then in a fresh process loads
it, records the RSS the load adds, and times ``--queries`` unseen defendants: hybrid search with
the charge filter, other provinces only and the province spread (k=10), and the cohort.
Run it once on the old code and once on the new one against the same ``--dir`` to compare.

Usage:  .venv/bin/python -m benchmarks.bench_retrieval_search --cases 3000 --dir /tmp/idx3k
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


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


def query(directory: Path, n_queries: int, seed: int) -> dict[str, float]:
    import faiss

    from retrieval.search import RetrievalIndex
    from sentencing.demo_corpus import generate_cases

    faiss.omp_set_num_threads(1)
    queries = [c for c in generate_cases(n_queries * 2, seed + 1, start=10_000_000) if c.province][:n_queries]
    base = rss_mb()
    t = time.perf_counter()
    index = RetrievalIndex.load(directory)
    load_s = time.perf_counter() - t
    load_rss = rss_mb() - base
    for q in queries[:5]:  # warm-up: first-touch page faults, jieba dictionary
        index.search(q, q.defendants[0], k=10)
    search_ms, cohort_ms = [], []
    for q in queries:
        for d in q.defendants:
            t = time.perf_counter()
            index.search(q, d, k=10, province_scope="other", same_charge=True, mode="hybrid")
            search_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            index.cohort(q, d)
            cohort_ms.append((time.perf_counter() - t) * 1000)
    return {
        "rows": len(index),
        "load_s": load_s,
        "load_rss_mb": load_rss,
        "rss_after_queries_mb": rss_mb() - base,
        "search_p50_ms": float(np.percentile(search_ms, 50)),
        "search_p99_ms": float(np.percentile(search_ms, 99)),
        "cohort_p50_ms": float(np.percentile(cohort_ms, 50)),
        "cohort_p99_ms": float(np.percentile(cohort_ms, 99)),
        "searches": len(search_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--dir", type=Path, required=True, help="index directory (built when missing)")
    parser.add_argument("--query-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query_only:
        print(json.dumps(query(args.dir, args.queries, args.seed)))
        return
    if not (args.dir / "manifest.json").is_file():
        build(args.cases, args.seed, args.dir)
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_retrieval_search", "--dir", str(args.dir), "--query-only",
         "--queries", str(args.queries), "--seed", str(args.seed)],
        check=True, capture_output=True, text=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{r['rows']:,} rows: load {r['load_s']:.2f} s, +{r['load_rss_mb']:,.0f} MB RSS "
          f"(+{r['rss_after_queries_mb']:,.0f} MB after queries)")
    print(f"search hybrid (charge filter, other provinces, spread), {r['searches']} queries: "
          f"p50 {r['search_p50_ms']:.2f} ms  p99 {r['search_p99_ms']:.2f} ms")
    print(f"cohort: p50 {r['cohort_p50_ms']:.2f} ms  p99 {r['cohort_p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
