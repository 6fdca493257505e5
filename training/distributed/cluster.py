"""Connecting to Dask and running one stage's tasks with a progress bar and structured logs."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("liangxing.distributed")


def connect(scheduler: str | Any) -> Any:
    """A ``distributed.Client``: a scheduler address (``tcp://host:8786``), ``local`` / ``local:N`` for a
    LocalCluster of N one-thread worker processes on this machine, or an existing Client (returned as is)."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        return scheduler
    if not isinstance(scheduler, str) or not scheduler:
        raise ValueError(f"scheduler: expected an address like tcp://host:8786 or local:N, got {scheduler!r}")
    if scheduler == "local" or scheduler.startswith("local:"):
        n = scheduler.partition(":")[2] or "2"
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"scheduler: local:N needs a positive worker count, got {scheduler!r}")
        cluster = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.WARNING)
        return Client(cluster)
    if "://" not in scheduler:
        raise ValueError(f"scheduler: {scheduler!r} is not an address (expected tcp://host:8786 or local:N)")
    return Client(scheduler, timeout="30s")


def close(client: Any) -> None:
    """Close a client, and the LocalCluster behind it when :func:`connect` started one."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def run_tasks(client: Any, stage: str, fn: Callable[..., dict[str, Any]], jobs: Sequence[tuple[Any, ...]],
              *, show_progress: bool = True) -> list[dict[str, Any]]:
    """Run ``fn(*job)`` for every job on the workers; results in job order; the first failure is raised
    with the stage and the job named (completed partitions stay on disk)."""
    from distributed import as_completed
    from tqdm import tqdm

    started = time.perf_counter()
    futures = [client.submit(fn, *job, key=f"{stage}-{i:05d}-{time.time_ns()}", pure=False)
               for i, job in enumerate(jobs)]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[dict[str, Any] | None] = [None] * len(futures)
    bar = tqdm(total=len(futures), desc=stage, unit="part", file=sys.stderr, disable=not show_progress,
               leave=False)
    try:
        for future in as_completed(futures):
            i = index[future.key]
            try:
                results[i] = future.result()
            except Exception as e:
                for other in futures:
                    other.cancel()
                raise RuntimeError(f"stage {stage!r}, partition {i} ({jobs[i][0]!r}): {e}") from e
            bar.update(1)
    finally:
        bar.close()
    log.info("stage %s: %d partitions in %.1f s", stage, len(futures), time.perf_counter() - started)
    return [r for r in results if r is not None]
