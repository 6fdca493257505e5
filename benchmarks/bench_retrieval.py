"""Retrieval at scale (issue 5): encode throughput, index build time and memory, recall and latency.

Corpus: the demo generator makes about 500 cases/s, so a million would take over half an hour;
this benchmark draws a pool of ``--pool`` demo cases and derives the ``--cases`` indexed cases from
it by template variation (new id, court and province, date, amounts in the facts, defendant name,
circumstances). The documents are realistic judgment text; the variation is stated, not hidden.

Measured in one run, on this machine:
1. encoder training on the pool (static encoder, contrastive);
2. encode throughput of the numpy encoder (documents/s), and documents+encode together;
3. ``RetrievalIndex.build`` over the streamed corpus with the size-chosen factory (HNSW above
   ``retrieval_exact_max``): wall time and peak RSS (the BM25 side is off unless ``--sparse``);
4. queries (``--queries`` unseen variants) with the charge filter, other provinces only and the
   province spread, against the same index with its vectors in an exact ``IDMap2,Flat``:
   recall@10 of the approximate results against the exact ones, p50/p99 latency of each, and the
   ratio; plus the unfiltered raw FAISS search of both, for reference.

Usage:  .venv/bin/python -m benchmarks.bench_retrieval --cases 100000
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np

from retrieval.encoder import load_encoder
from retrieval.index import SearchKnobs, VectorIndex
from retrieval.search import RetrievalIndex, train_corpus_encoder
from retrieval.text import case_document
from sentencing.case import Case, Circumstance, CircumstanceCode, Court, Measure
from sentencing.config import Settings
from sentencing.demo_corpus import generate_cases

_NUMBER = re.compile(r"\d{3,}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def variants(pool: list[Case], n: int, seed: int, prefix: str) -> Iterator[Case]:
    """``n`` cases derived from the pool: same kind of text, other court, date, amounts and names."""
    rng = random.Random(seed)
    courts = [(c.court, c.province) for c in pool if c.court is not None]
    optional = list(CircumstanceCode)[:12]
    for i in range(n):
        base = pool[i % len(pool)]
        court, province = courts[rng.randrange(len(courts))]
        scale = rng.uniform(0.6, 1.6)
        facts = _NUMBER.sub(lambda m, s=scale: str(max(1, int(int(m.group()) * s))), base.facts)
        defendants = []
        for d in base.defendants:
            q = d.quantities
            if q.amount_yuan is not None:
                q = q.model_copy(update={"amount_yuan": Measure(value=q.amount_yuan.value * scale)})
            circ = list(d.circumstances)
            if rng.random() < 0.3:
                circ = [*circ, Circumstance(code=rng.choice(optional))]
            defendants.append(d.model_copy(update={"quantities": q, "circumstances": circ}))
        yield base.model_copy(
            update={
                "id": f"{prefix}-{i}",
                "court": Court(name=court.name, province=court.province, city=court.city, level=court.level),
                "province": province,
                "date": base.date.replace(year=2015 + i % 9, day=min(base.date.day, 28)) if base.date else None,
                "facts": facts,
                "defendants": defendants,
            }
        )


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def run(n: int, pool_size: int, queries: int, seed: int, sparse: bool, exact_max: int) -> None:
    faiss.omp_set_num_threads(2)
    print(f"cases {n:,}; pool {pool_size:,} demo cases (seed {seed}); {queries} queries; faiss threads 2")
    t = time.perf_counter()
    pool = list(generate_cases(pool_size, seed))
    print(f"pool generated: {time.perf_counter() - t:.1f} s")
    settings = Settings(retrieval_sparse_max_rows=n if sparse else 0, retrieval_exact_max=exact_max)

    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        t = time.perf_counter()
        record = train_corpus_encoder(pool, scratch_dir / "encoder", settings)
        print(f"encoder training on {record['documents']:,} defendants ({record['pairs']:,} pairs): "
              f"{time.perf_counter() - t:.1f} s (training loop {record['seconds']} s)")
        encoder = load_encoder(scratch_dir / "encoder")

        sample = list(variants(pool, min(n, 50_000), seed + 1, "enc"))
        t = time.perf_counter()
        docs = [case_document(c, d) for c in sample for d in c.defendants]
        t_docs = time.perf_counter() - t
        t = time.perf_counter()
        encoder.encode(docs)
        t_enc = time.perf_counter() - t
        print(f"encode: {len(docs) / t_enc:,.0f} documents/s (numpy encoder); "
              f"with document text: {len(docs) / (t_docs + t_enc):,.0f} documents/s")
        del sample, docs

        rss_before = peak_rss_mb()
        t = time.perf_counter()
        index = RetrievalIndex.build(variants(pool, n, seed + 2, "c"), scratch_dir / "index",
                                     encoder_dir=scratch_dir / "encoder", settings=settings)
        build_s = time.perf_counter() - t
        print(f"build: {len(index):,} rows in {build_s:.1f} s ({len(index) / build_s:,.0f} rows/s), "
              f"factory {index.info()['factory']}, peak RSS {peak_rss_mb():,.0f} MB "
              f"(before build {rss_before:,.0f} MB)")

        # exact baseline over the same vectors (reconstructed from the HNSW storage)
        approx = index.vectors
        t = time.perf_counter()
        exact = VectorIndex.create(encoder.dim, "IDMap2,Flat")
        for start in range(0, approx.ntotal, 100_000):
            ids = np.arange(start, min(start + 100_000, approx.ntotal), dtype=np.int64)
            exact.add(approx.reconstruct(ids), ids)
        print(f"exact Flat index filled in {time.perf_counter() - t:.1f} s; peak RSS now {peak_rss_mb():,.0f} MB")

        qcases = [c for c in variants(pool, queries * 2, seed + 3, "q") if c.province][:queries]
        results: dict[str, list[list[str]]] = {"approx": [], "exact": []}
        latency: dict[str, list[float]] = {"approx": [], "exact": []}
        for name, vectors in (("approx", approx), ("exact", exact)):
            index.vectors = vectors
            for q in qcases:
                t = time.perf_counter()
                hits = index.search(q, q.defendants[0], k=10, mode="dense")
                latency[name].append((time.perf_counter() - t) * 1000)
                results[name].append([h.case_id for h in hits])
        index.vectors = approx
        recall = np.mean([
            len(set(a) & set(e)) / len(e) for a, e in zip(results["approx"], results["exact"], strict=True) if e
        ])
        (a50, a99), (e50, e99) = percentiles(latency["approx"]), percentiles(latency["exact"])
        print(f"search (charge filter, other provinces, spread ≤{settings.retrieval_max_per_province}/province):")
        print(f"  approx p50 {a50:.2f} ms  p99 {a99:.2f} ms")
        print(f"  exact  p50 {e50:.2f} ms  p99 {e99:.2f} ms")
        print(f"  recall@10 {recall:.3f}; p99 exact/approx {e99 / a99:.1f}×")

        qv = encoder.encode([case_document(q, q.defendants[0]) for q in qcases])
        knobs = SearchKnobs(ef_search=settings.retrieval_ef_search)
        raw: dict[str, list[float]] = {"approx": [], "exact": []}
        raw_ids: dict[str, list[set[int]]] = {"approx": [], "exact": []}
        for name, vectors in (("approx", approx), ("exact", exact)):
            for v in qv:
                t = time.perf_counter()
                _s, ids = vectors.search(v, 10, None, knobs)
                raw[name].append((time.perf_counter() - t) * 1000)
                raw_ids[name].append(set(ids.tolist()))
        raw_recall = np.mean([len(a & e) / 10 for a, e in zip(raw_ids["approx"], raw_ids["exact"], strict=True)])
        (a50, a99), (e50, e99) = percentiles(raw["approx"]), percentiles(raw["exact"])
        print(f"raw FAISS top-10, no filter: approx p50 {a50:.2f} p99 {a99:.2f} ms; exact p50 {e50:.2f} "
              f"p99 {e99:.2f} ms; recall@10 {raw_recall:.3f}; p99 exact/approx {e99 / a99:.1f}×")
        disk = sum(f.stat().st_size for f in (scratch_dir / "index").rglob("*") if f.is_file())
        print(f"index on disk: {disk / 2**20:,.0f} MB; peak RSS of the run {peak_rss_mb():,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--pool", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--sparse", action="store_true", help="also build the BM25 side (slow: jieba)")
    parser.add_argument("--exact-max", type=int, default=Settings().retrieval_exact_max,
                        help="rows up to which the index is exact (lower it to bench HNSW on a small corpus)")
    args = parser.parse_args()
    run(args.cases, args.pool, args.queries, args.seed, args.sparse, args.exact_max)


if __name__ == "__main__":
    main()
