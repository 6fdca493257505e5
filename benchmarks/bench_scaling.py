"""Scaling curves of the distributed pipeline: time and peak memory per stage, 1 vs 2 Dask workers.

    .venv/bin/python -m benchmarks.bench_scaling --sizes 10000 100000 --workers 1 2

For each size N (synthetic demo corpus, ``sentencing.demo_corpus.write_corpus``, generated once into
``--cache``) and each worker count W, a fresh LocalCluster of W one-thread worker processes runs
the stages one after another: import (parse → Parquet), features (→ Parquet), train (lightgbm.dask),
encoder (local, once), index (encode → FAISS shards, one per worker). Per stage: wall seconds and
the peak resident memory of this process plus its worker processes (psutil, sampled every 0.2 s).
The baseline is W = 1 in the same run; speed-up = t(1) / t(W). Figures go to stdout, a JSON file
and a plot (``benchmarks/results/scaling.png``), with a linear extrapolation to 10M cases from the
largest size run, labelled as such. The encoder is trained with ``--epochs`` contrastive epochs
(default 0: the SVD start) to keep the run bounded; it is a single local step in every setting.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


class PeakMemory:
    """Peak RSS (bytes) of this process and all its descendants while a block runs."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()

    def _total(self) -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._total())
            self._stop.wait(self.every)

    @contextmanager
    def measure(self):
        self.peak = self._total()
        self._stop.clear()
        t = threading.Thread(target=self._run, daemon=True)
        t.start()
        try:
            yield self
        finally:
            self._stop.set()
            t.join()


def corpus(cache: Path, n: int, seed: int) -> Path:
    from sentencing.demo_corpus import write_corpus

    path = cache / f"demo-{n}-{seed}.jsonl"
    if not path.is_file():
        t = time.perf_counter()
        write_corpus(path, n, seed, workers=2)
        print(f"# generated {n} cases in {time.perf_counter() - t:.0f} s -> {path}", file=sys.stderr)
    return path


def run_one(path: Path, n: int, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    from sentencing.config import Settings
    from training.distributed import (
        DistributedConfig,
        PipelineSummary,
        close,
        connect,
        plan_input,
        stage_features,
        stage_import,
        stage_index,
        stage_train,
    )
    from training.train import TrainConfig

    settings = Settings(retrieval_epochs=args.epochs, retrieval_factory=args.factory)
    config = DistributedConfig(cases_per_partition=args.partition, progress=False, factory=args.factory)
    client = connect(f"local:{workers}")
    client.wait_for_workers(workers)
    work = Path(tempfile.mkdtemp(prefix=f"scaling-{n}-{workers}-", dir=args.cache))
    summary = PipelineSummary(scheduler=str(client.scheduler.address), workers=workers)
    mem = PeakMemory()
    peaks: dict[str, int] = {}
    try:
        parts = plan_input("judge", [path], config.cases_per_partition)
        with mem.measure():
            cases = stage_import(client, parts, work / "cases", summary, False)
        peaks["import"] = mem.peak
        with mem.measure():
            feats, data_hash = stage_features(client, cases, work / "features", None, summary, False)
        peaks["features"] = mem.peak
        with mem.measure():
            stage_train(client, feats, work / "model", data_hash, config, TrainConfig(n_estimators=args.trees),
                        summary)
        peaks["train"] = mem.peak
        with mem.measure():
            stage_index(client, cases, work / "index", config, settings, summary, False)
        peaks["index"] = mem.peak
        peaks["encoder"] = peaks["index"]  # the encoder step runs inside the index block
    finally:
        close(client)
        shutil.rmtree(work, ignore_errors=True)
    stages = {s.stage: s.seconds for s in summary.stages}
    return {"cases": n, "workers": workers, "commit": _commit(), "load_avg_1m": round(os.getloadavg()[0], 1),
            "defendants": summary.defendants, "seconds": stages,
            "peak_mb": {k: round(v / 2**20) for k, v in peaks.items()}, "metrics": summary.metrics,
            "shards": summary.shards}


def _commit() -> str | None:
    """The code measured (results of several invocations are merged, possibly from different commits)."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def plot(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = ("import", "features", "train", "encoder", "index")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for w in sorted({r["workers"] for r in results}):
        rows = sorted((r for r in results if r["workers"] == w), key=lambda r: r["cases"])
        xs = [r["cases"] for r in rows]
        for s in stages:
            axes[0].plot(xs, [r["seconds"].get(s, 0) for r in rows], marker="o",
                         linestyle="-" if w == 1 else "--", label=f"{s}, {w} worker{'s' * (w > 1)}")
        axes[1].plot(xs, [max(r["peak_mb"].values()) for r in rows], marker="o", label=f"{w} worker(s)")
    for ax, title, ylabel in ((axes[0], "time per stage", "seconds"), (axes[1], "peak memory (all processes)", "MiB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("synthetic cases")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=6, ncol=2)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--partition", type=int, default=2_000, help="cases per partition")
    ap.add_argument("--trees", type=int, default=150, help="boosting rounds per quantile model")
    ap.add_argument("--epochs", type=int, default=0, help="encoder contrastive epochs")
    ap.add_argument("--factory", default=None, help="FAISS factory of the shards (default: by shard size)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "liangxing-bench")
    ap.add_argument("--out", type=Path, default=RESULTS / "scaling.json")
    ap.add_argument("--report-only", action="store_true", help="print the table and plot from --out; run nothing")
    args = ap.parse_args()
    if args.report_only:
        args.sizes = []
    args.cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results: list[dict[str, Any]] = []
    if args.out.is_file():  # keep runs measured by an earlier invocation (state which in the report)
        rerun = {(n, w) for n in args.sizes for w in args.workers}
        results = [r for r in json.loads(args.out.read_text()) if (r["cases"], r["workers"]) not in rerun]
    for n in args.sizes:
        path = corpus(args.cache, n, args.seed)
        for w in args.workers:
            t = time.perf_counter()
            r = run_one(path, n, w, args)
            r["total_s"] = round(time.perf_counter() - t, 1)
            results.append(r)
            print(json.dumps(r, ensure_ascii=False), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
    print("\n| cases | workers | " + " | ".join(("import", "features", "train", "encoder", "index")) +
          " | total s | peak MiB | speed-up vs 1 worker | commit |")
    print("|---" * 10 + "|")
    for r in sorted(results, key=lambda r: (r["cases"], r["workers"])):
        base = next((b for b in results if b["cases"] == r["cases"] and b["workers"] == 1), None)
        speed = f"{base['total_s'] / r['total_s']:.2f}×" if base else "–"
        s = r["seconds"]
        print(f"| {r['cases']:,} | {r['workers']} | " + " | ".join(f"{s.get(k, 0):.1f}" for k in
              ("import", "features", "train", "encoder", "index")) +
              f" | {r['total_s']:.0f} | {max(r['peak_mb'].values())} | {speed} | {r.get('commit') or '?'} |")
    largest = max(r["cases"] for r in results)
    for w in sorted({r["workers"] for r in results if r["cases"] == largest}):
        r = next(r for r in results if r["cases"] == largest and r["workers"] == w)
        scale = 10_000_000 / largest
        print(f"EXTRAPOLATION (linear in cases from {largest:,}, not measured): 10M cases on {w} worker(s) "
              f"≈ {r['total_s'] * scale / 3600:.1f} h on this machine's cores")
    plot(results, RESULTS / "scaling.png")
    print(f"plot: {RESULTS / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
