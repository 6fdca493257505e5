"""Retrieval at scale (issue 5): encode throughput, index build time and memory, recall and latency.

Corpus: the demo generator makes about 500 cases/s, so a million would take over half an hour;
this benchmark draws a pool of ``--pool`` demo cases and derives the ``--cases`` indexed cases from
it by template variation (new id, court and province, date, amounts in the facts, defendant name,
circumstances). The documents are realistic judgment text; the variation is stated, not hidden.

Measured in one run, on this machine:
1. encoder training on the pool (static encoder, contrastive);
2. encode throughput of the numpy encoder (documents/s), and documents+encode together;
3. ``RetrievalIndex.build`` over the streamed corpus with the size-chosen factory (IVF above
   ``retrieval_exact_max``; ``--factory`` to compare): wall time and peak RSS of the build (run in
   its own process), and the time spent encoding, in FAISS and on metadata (the sparse side is off
   unless ``--sparse``);
4. queries (``--queries`` unseen variants, after as many other ones untimed, so that both sides
   are measured in steady state) with the charge filter, other provinces only and the
   province spread, against the same index with its vectors in an exact ``IDMap2,Flat``:
   recall@10 of the approximate results against the exact ones, p50/p99 latency of each, and the
   ratio; plus the unfiltered raw FAISS search of both, for reference. A refined index's codes are
   measured both ways (``retrieval_refine_reads``), ``"read"`` with the share of its rows that came
   from the disk. Each side gets a fresh encoder, warmed like the rest, so that none meets query
   pieces another cached.
   The exact index holds the very vectors the build encoded (kept aside in a file during the
   build). Searches run on one FAISS thread, as in the service;
5. with ``--add N``: N new cases added to the built index and saved, without a rebuild (what a
   retrain does to a deployed index), against the full build time of step 3.

Usage:  .venv/bin/python -m benchmarks.bench_retrieval --cases 1000000 --add 10000 --keep /tmp/idx1m
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np

from retrieval import search as search_module
from retrieval.encoder import StaticEncoder, load_encoder, peak_rss_mb
from retrieval.index import VectorIndex, set_search_threads
from retrieval.search import RetrievalIndex, train_corpus_encoder
from retrieval.sparse import SparseIndex
from retrieval.text import case_document
from sentencing.case import Case, Circumstance, CircumstanceCode, Court, Measure
from sentencing.config import Settings
from sentencing.demo_corpus import generate_cases

VECTORS_FILE = "vectors.f32"
"""The build's vectors, kept aside for the exact baseline (and for ``--reuse``)."""
_NUMBER = re.compile(r"\d{3,}")


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


class _VectorTee:
    """Times the build's stages and keeps a copy of every vector it encodes (the exact baseline).

    Wraps ``RetrievalIndex._ingest``, ``StaticEncoder.encode`` and ``VectorIndex.add`` for the
    duration of a ``with`` block: the vectors go to a file (not memory, so the build's peak RSS is
    its own). Encoding runs in a background thread while the next rows are prepared, so the
    stage times overlap and do not add up to the wall time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.encode_s = self.faiss_s = self.ingest_s = self.tokenize_s = self.sparse_s = 0.0

    def __enter__(self) -> _VectorTee:
        original, add, encode = RetrievalIndex._ingest, VectorIndex.add, StaticEncoder.encode
        tokenize, from_tokens = search_module.tokenize, SparseIndex.__dict__["from_tokens"]
        tee = self
        fh = self.path.open("wb")
        self._restore = (original, add, encode, fh, tokenize, from_tokens)

        def ingest(index: RetrievalIndex, batch, sparse_tokens, *, migrate: bool, vecs=None):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            if vecs is None:
                vecs = index.encoder.encode([r.doc for r in batch])
            fh.write(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
            out = original(index, batch, sparse_tokens, migrate=migrate, vecs=vecs)
            tee.ingest_s += time.perf_counter() - began
            return out

        def timed_encode(encoder: StaticEncoder, texts: list[str], **kw):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            out = encode(encoder, texts, **kw)
            tee.encode_s += time.perf_counter() - began
            return out

        def timed_add(vectors: VectorIndex, x: np.ndarray, ids: np.ndarray) -> None:
            began = time.perf_counter()
            add(vectors, x, ids)
            tee.faiss_s += time.perf_counter() - began

        def timed_tokenize(text: str) -> list[str]:
            began = time.perf_counter()
            out = tokenize(text)
            tee.tokenize_s += time.perf_counter() - began
            return out

        def timed_from_tokens(cls, tokens, groups=None):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            out = from_tokens.__func__(cls, tokens, groups)
            tee.sparse_s += time.perf_counter() - began
            return out

        RetrievalIndex._ingest = ingest  # type: ignore[method-assign]
        VectorIndex.add = timed_add  # type: ignore[method-assign]
        StaticEncoder.encode = timed_encode  # type: ignore[method-assign]
        search_module.tokenize = timed_tokenize  # type: ignore[assignment]
        SparseIndex.from_tokens = classmethod(timed_from_tokens)  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        original, add, encode, fh, tokenize, from_tokens = self._restore
        RetrievalIndex._ingest = original  # type: ignore[method-assign]
        VectorIndex.add = add  # type: ignore[method-assign]
        StaticEncoder.encode = encode  # type: ignore[method-assign]
        search_module.tokenize = tokenize  # type: ignore[assignment]
        SparseIndex.from_tokens = from_tokens  # type: ignore[method-assign]
        fh.close()


def _build(pool_size: int, seed: int, n: int, scratch: str, settings: dict) -> dict[str, float]:
    """The timed index build (run in a spawned process; see ``run``)."""
    faiss.omp_set_num_threads(2)
    pool = list(generate_cases(pool_size, seed))
    scratch_dir = Path(scratch)
    start_rss = peak_rss_mb()
    tee = _VectorTee(scratch_dir / VECTORS_FILE)
    began = time.perf_counter()
    with tee:
        RetrievalIndex.build(variants(pool, n, seed + 2, "c"), scratch_dir / "index",
                             encoder_dir=scratch_dir / "encoder", settings=Settings(**settings))
    return {"build_s": time.perf_counter() - began, "peak_rss_mb": peak_rss_mb(), "start_rss_mb": start_rss,
            "encode_s": tee.encode_s, "faiss_s": tee.faiss_s, "ingest_s": tee.ingest_s,
            "tokenize_s": tee.tokenize_s, "sparse_s": tee.sparse_s}


def _build_to(send, *args) -> None:  # type: ignore[no-untyped-def]
    """:func:`_build` in a spawned process, its result (or error) sent back through ``send``."""
    try:
        send.send(_build(*args))
    except BaseException as exc:
        send.send(exc)
        raise


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def run(n: int, pool_size: int, queries: int, seed: int, sparse: bool, exact_max: int, factory: str | None,
        keep: Path | None = None, add: int = 0, reuse: bool = False, nprobe: int | None = None) -> None:
    faiss.omp_set_num_threads(2)
    print(f"cases {n:,}; pool {pool_size:,} demo cases (seed {seed}); {queries} queries; faiss threads 2 to build, "
          f"1 to search; load average {os.getloadavg()[0]:.1f}")
    t = time.perf_counter()
    pool = list(generate_cases(pool_size, seed))
    print(f"pool generated: {time.perf_counter() - t:.1f} s")
    # rows are defendants, more than the cases: the sparse side must not be dropped half-way
    settings = Settings(retrieval_sparse_max_rows=10 * n if sparse else 0, retrieval_exact_max=exact_max,
                        **({"retrieval_large_factory": factory} if factory else {}),
                        **({"retrieval_nprobe": nprobe} if nprobe else {}))

    with contextlib.ExitStack() as stack:
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            scratch_dir = keep
        else:
            scratch_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        build_s: float | None = None
        if reuse:
            index = RetrievalIndex.load(scratch_dir / "index", settings=settings)
            encoder = index.encoder
            print(f"reusing the index in {scratch_dir / 'index'}: {len(index):,} rows, "
                  f"factory {index.info()['factory']}")
            built_rows = (scratch_dir / VECTORS_FILE).stat().st_size // (4 * encoder.dim)
            later = {index.case_ids[r] for r in range(built_rows, len(index.case_ids))}
            if later:  # rows added after the build (--add): not in the exact baseline, so set aside here
                print(f"  leaving out {index.delete(later):,} rows added after the build (in memory only)")
        else:
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

            # The build runs in a fresh process so that its peak RSS is its own (this one has
            # imported torch to train the encoder).
            # Not a pool worker: those are daemonic, and the build starts its encoder process.
            ctx = mp.get_context("spawn")
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_build_to, args=(send, pool_size, seed, n, str(scratch_dir),
                                                        settings.model_dump()))
            child.start()
            stages = receive.recv()
            child.join()
            if isinstance(stages, BaseException):
                raise stages
            build_s = stages["build_s"]
            index = RetrievalIndex.load(scratch_dir / "index", settings=settings)
            child_mb = index.manifest.get("encoder_process_peak_rss_mb")
            print(f"build: {len(index):,} rows in {build_s:.1f} s ({len(index) / build_s:,.0f} rows/s), "
                  f"factory {index.info()['factory']}, peak RSS of the build process {stages['peak_rss_mb']:,.0f} MB "
                  f"(of which {stages['start_rss_mb']:,.0f} MB before the build: interpreter, modules, demo pool)"
                  + (f" + {child_mb:,} MB peak of its encoder process = {stages['peak_rss_mb'] + child_mb:,.0f} MB"
                     if child_mb else ""))
            where = ("a child process (from the first batch past retrieval_encode_process_rows; only the "
                     "batches encoded in this process are timed here)" if index.manifest.get("encoded_in_process")
                     else "a background thread")
            print(f"  stages: encode busy {stages['encode_s']:.1f} s in {where}, overlapping the row "
                  f"preparation (documents, guideline profiles); FAISS train+add {stages['faiss_s']:.1f} s, "
                  f"metadata and display rows {stages['ingest_s'] - stages['faiss_s'] - stages['tokenize_s']:.1f} s")
            if sparse:
                print(f"  sparse side: tokenize {stages['tokenize_s']:.1f} s (inside the row ingestion), "
                      f"term-weight matrices {stages['sparse_s']:.1f} s")

        # exact baseline over the same vectors (as encoded during the build, kept aside in a file)
        approx = index.vectors
        if approx.populating is not None:  # the service maps the codes' pages in at load, in the background
            t = time.perf_counter()
            approx.populating.join()
            print(f"refinement codes mapped in (retrieval_refine_reads 'map'): {time.perf_counter() - t:.2f} s "
                  "after the load")
        t = time.perf_counter()
        exact = VectorIndex.create(encoder.dim, "IDMap2,Flat")
        stored = np.memmap(scratch_dir / VECTORS_FILE, dtype=np.float32, mode="r").reshape(-1, encoder.dim)
        for start in range(0, len(stored), 100_000):
            ids = np.arange(start, min(start + 100_000, len(stored)), dtype=np.int64)
            exact.add(np.asarray(stored[start : start + 100_000]), ids)
        print(f"exact Flat index filled in {time.perf_counter() - t:.1f} s; peak RSS now {peak_rss_mb():,.0f} MB")

        set_search_threads(1)
        # a query is a case before judgment, as the service receives it (the variants carry their
        # sentences, which every search would first copy the case to drop)
        qcases = [c.before_judgment() for c in variants(pool, queries * 2, seed + 3, "q") if c.province][:queries]
        # Steady state, as in the service: other queries first touch the pages of the rows, the
        # metadata and the codes, and fill the filter cache, untimed, on each side.
        warmup = [c.before_judgment() for c in variants(pool, queries * 2, seed + 5, "w") if c.province][:queries]
        encoder_dir = encoder.model_dir
        sides = {"approx": approx, "exact": exact}
        if approx.refine is not None and approx.mmapped:
            # the same index file, its refinement codes read the other way (retrieval_refine_reads)
            this = "read" if approx.refine_codes is not None else "map"
            other = "map" if this == "read" else "read"
            sides[f"approx, codes {other}"] = VectorIndex.load(approx.path, approx.factory, refine_reads=other)
            if sides[f"approx, codes {other}"].populating is not None:
                sides[f"approx, codes {other}"].populating.join()
            print(f"approx: refinement codes read by '{this}' (retrieval_refine_reads); also measured with '{other}'")
        results: dict[str, list[list[str]]] = {name: [] for name in sides}
        latency: dict[str, list[float]] = {name: [] for name in sides}
        waited: dict[str, str] = {}  # how many of the rows 'read' read in the timed queries came from the disk
        for name, vectors in sides.items():
            index.vectors = vectors
            # each side starts from the same state: a fresh encoder (its cache of query pieces empty)
            # warmed by the same other queries, so that no side meets pieces a side before it cached
            index.encoder = load_encoder(encoder_dir)
            for q in warmup:
                index.search(q, q.defendants[0], k=10, mode="dense")
            codes = vectors.refine_codes
            rows_before, disk_before = (codes.rows_read, codes.rows_waited) if codes is not None else (0, 0)
            for q in qcases:
                t = time.perf_counter()
                hits = index.search(q, q.defendants[0], k=10, mode="dense")
                latency[name].append((time.perf_counter() - t) * 1000)
                results[name].append([h.case_id for h in hits])
            if codes is not None:
                rows, disk = codes.rows_read - rows_before, codes.rows_waited - disk_before
                waited[name] = f"; 'read': {disk:,} of {rows:,} rows read from the disk (not in the page cache)"
        index.vectors = approx
        e50, e99 = percentiles(latency["exact"])
        print(f"search (charge filter, other provinces, spread ≤{settings.retrieval_max_per_province}/province):")
        print(f"  exact  p50 {e50:.2f} ms  p99 {e99:.2f} ms")
        for name in sides:
            if name == "exact":
                continue
            recall = np.mean([
                len(set(a) & set(e)) / len(e) for a, e in zip(results[name], results["exact"], strict=True) if e
            ])
            a50, a99 = percentiles(latency[name])
            print(f"  {name}: p50 {a50:.2f} ms  p99 {a99:.2f} ms; recall@10 {recall:.3f}; p99 exact/approx "
                  f"{e99 / a99:.1f}×{waited.get(name, '')}")

        qv = encoder.encode([case_document(q, q.defendants[0]) for q in qcases])
        knobs = index.knobs
        raw: dict[str, list[float]] = {"approx": [], "exact": []}
        raw_ids: dict[str, list[set[int]]] = {"approx": [], "exact": []}
        for name, vectors in (("approx", approx), ("exact", exact)):
            for v in qv[:10]:  # warm-up, untimed
                vectors.search(v, 10, None, knobs)
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
        if add:
            # New judgments into the deployed index, without a rebuild (what `sentencing retrain` does
            # to the index), against the full build above.
            faiss.omp_set_num_threads(2)
            new_cases = list(variants(pool, add, seed + 4, "new"))
            t = time.perf_counter()
            rows = index.add(new_cases)
            index.save()
            add_s = time.perf_counter() - t
            reloaded = RetrievalIndex.load(scratch_dir / "index", settings=settings)
            versus = f"; full build {build_s:.1f} s ({build_s / add_s:.0f}× longer)" if build_s else ""
            print(f"incremental add: {add:,} cases ({rows:,} rows) added and saved in {add_s:.1f} s{versus}; "
                  f"index now {len(reloaded):,} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--pool", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--sparse", action="store_true", help="also build the sparse side (slow: jieba)")
    parser.add_argument("--exact-max", type=int, default=Settings().retrieval_exact_max,
                        help="rows up to which the index is exact (lower it to bench HNSW on a small corpus)")
    parser.add_argument("--factory", default=None,
                        help=f"large-corpus factory (default: settings, {Settings().retrieval_large_factory})")
    parser.add_argument("--keep", type=Path, default=None,
                        help="build in this folder and keep it (index/): bench_service --index-dir can serve it")
    parser.add_argument("--add", type=int, default=0,
                        help="then add this many new cases to the built index without a rebuild, timed")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: skip training and building, measure the queries on the kept index")
    parser.add_argument("--nprobe", type=int, default=None, help="IVF lists probed (default: settings)")
    args = parser.parse_args()
    if args.reuse and args.keep is None:
        parser.error("--reuse needs --keep DIR")
    run(args.cases, args.pool, args.queries, args.seed, args.sparse, args.exact_max, args.factory, args.keep,
        args.add, args.reuse, args.nprobe)


if __name__ == "__main__":
    main()
