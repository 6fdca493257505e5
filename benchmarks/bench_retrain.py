"""Retraining after new judgments arrive: incremental index update against a full rebuild, same run.

    .venv/bin/python -m benchmarks.bench_retrain --base 100000 --new 10000

A store of ``--base`` synthetic cases gets a first retrain (the deployment: models + index). Then
``--new`` cases are added and the registry is copied, and two retrains run on the same store:

* **incremental** (the default rule): the serving index is copied and only the new cases are
  encoded and added (``RetrievalIndex.add``), no encoder retraining;
* **rebuild** (``encoder_growth=0`` forces it): the encoder is retrained and every case re-encoded.

Both also retrain the range models on every stored case (that part is the same work in both): the
feature rows of cases featurised before come back from the registry's feature cache
(:mod:`training.feature_cache`), copied with the registry, so both featurise only the new cases.
Prints wall seconds per stage and the ratio rebuild / incremental. ``--epochs`` sets the encoder's
contrastive epochs (default 0, the SVD start, to bound the run: with training epochs a rebuild
costs more, so the ratio printed is a lower bound). ``--scheduler`` trains on a Dask cluster.

With ``--dir``, a run finds what an earlier one left there and goes on from it: a store of
``--base`` (or ``--base`` + ``--new``) cases is reused, and so is a deployment (a serving version
trained on the first ``--base`` cases), so that an interrupted run at 1M cases need not rebuild its
store and deployment (an hour and more) before the timed retrains.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--epochs", type=int, default=0)
    ap.add_argument("--trees", type=int, default=150)
    ap.add_argument("--scheduler", default=None, help="train on this Dask cluster (tcp://…, local:N)")
    ap.add_argument("--dir", type=Path, default=None, help="working directory (default: a temporary one)")
    args = ap.parse_args()
    os.environ["LIANGXING_RETRIEVAL_EPOCHS"] = str(args.epochs)

    from sentencing.config import Settings
    from sentencing.demo_corpus import generate_cases
    from sentencing.store import CaseStore
    from training.registry import ModelRegistry
    from training.retrain import RetrainConfig, retrain

    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    root.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    store = CaseStore(root / "cases.db")
    stored = store.count()
    if stored == 0:
        t = time.perf_counter()
        for start in range(0, args.base, 5_000):
            store.add(generate_cases(min(5_000, args.base - start), args.seed, start=start))
        print(f"# store of {args.base} cases built in {time.perf_counter() - t:.0f} s", flush=True)
    elif stored in (args.base, args.base + args.new):
        print(f"# reusing the store in {root}: {stored} cases", flush=True)
    else:
        raise SystemExit(f"--dir: {root / 'cases.db'} holds {stored} cases, neither --base nor --base + --new")

    def run(registry: ModelRegistry, config: RetrainConfig) -> tuple[float, object]:
        t0 = time.perf_counter()
        report = retrain(store, registry, config=config, settings=settings, scheduler=args.scheduler,
                         progress=lambda msg: print(f"  {time.perf_counter() - t0:7.1f} s  {msg}", flush=True))
        return time.perf_counter() - t0, report

    deployment = ModelRegistry(root / "registry")
    serving = deployment.current()
    if serving is None:
        first_s, first = run(deployment, RetrainConfig())
        print(f"# deployment: first retrain {first_s:.0f} s; index {first.index_mode}", flush=True)
    elif stored and serving.store_seq == store.max_seq() - (stored - args.base):
        print(f"# reusing the deployment: version {serving.id}, trained on {serving.n_cases} cases", flush=True)
    else:
        raise SystemExit(f"--dir: the registry's serving version {serving.id} is not the deployment of the "
                         f"first {args.base} cases (trained up to store sequence {serving.store_seq})")
    if store.count() == args.base:
        t = time.perf_counter()
        store.add(generate_cases(args.new, args.seed, start=args.base))
        print(f"# {args.new} new cases stored in {time.perf_counter() - t:.0f} s", flush=True)
    shutil.rmtree(root / "registry-rebuild", ignore_errors=True)
    shutil.copytree(root / "registry", root / "registry-rebuild")

    results = {}
    for name, registry, config in (
        ("incremental", ModelRegistry(root / "registry"), RetrainConfig()),
        ("rebuild", ModelRegistry(root / "registry-rebuild"), RetrainConfig(encoder_growth=0.0)),
    ):
        wall, report = run(registry, config)
        stages = {s.stage: round(s.seconds, 1) for s in report.stages}
        results[name] = {"wall_s": round(wall, 1), "index_mode": report.index_mode, "stages": stages,
                         "feature_cache": report.feature_cache, "promoted": report.promoted,
                         "metrics": report.candidate_metrics}
        print(json.dumps({name: results[name]}, ensure_ascii=False), flush=True)

    inc, reb = results["incremental"], results["rebuild"]
    idx = lambda r: next(v for k, v in r["stages"].items() if k.startswith("index"))  # noqa: E731
    print(f"\nbase {args.base:,} + new {args.new:,} cases (encoder epochs {args.epochs}, "
          f"training {'on ' + args.scheduler if args.scheduler else 'local'}):")
    print("| run | index mode | index stage s | features s | train s | evaluate s | wall s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        st = r["stages"]
        print(f"| {name} | {r['index_mode']} | {idx(r):.1f} | {st.get('features', 0):.1f} | {st.get('train', 0):.1f} | "
              f"{st.get('evaluate', 0):.1f} | {r['wall_s']:.1f} |")
    print(f"index stage: rebuild / incremental = {idx(reb) / max(idx(inc), 1e-9):.1f}×; "
          f"whole retrain: {reb['wall_s'] / inc['wall_s']:.2f}×")
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
