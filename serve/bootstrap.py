"""The embedded default: on first start, build the demo corpus, store it, train and index into <home>.

Crash-safe: everything is built inside ``<home>/.bootstrap-<id>/`` and renamed into place only when
complete (store, then index, then model: the model directory's presence means the build finished).
A half-finished earlier build is set aside, never deleted, and built again.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentencing.config import Settings


class BootstrapError(RuntimeError):
    """The embedded default could not be built; the message says which step failed."""


def is_built(settings: Settings) -> bool:
    return settings.store_path.is_file() and settings.index_path.is_dir() and settings.model_path.is_dir()


def ensure_default(settings: Settings, log: Callable[[str], None] = lambda _: None, *,
                   train_config: Any = None) -> bool:
    """Build the embedded default into Settings.home unless it is there; returns True if it built."""
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    if is_built(settings):
        return False
    _set_aside_partial(settings, log)
    build_dir = home / f".bootstrap-{uuid.uuid4().hex[:8]}"
    build_dir.mkdir()
    try:
        built = build_default(build_dir, settings, log, train_config=train_config)
        os.replace(built["store"], settings.store_path)
        os.replace(built["index"], settings.index_path)
        os.replace(built["model"], settings.model_path)
    except BootstrapError:
        raise
    except Exception as exc:
        raise BootstrapError(
            f"building the embedded default in {build_dir} failed: {type(exc).__name__}: {exc}"
        ) from exc
    shutil.rmtree(build_dir, ignore_errors=True)
    return True


def _set_aside_partial(settings: Settings, log: Callable[[str], None]) -> None:
    """Move a partial earlier build (some of store/index/model) aside so that nothing is lost."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    for path in (settings.store_path, settings.index_path, settings.model_path):
        if path.exists():
            aside = path.with_name(f"{path.name}.incomplete-{stamp}")
            os.replace(path, aside)
            log(f"set aside an incomplete earlier build: {path} → {aside}")


def build_default(build_dir: Path, settings: Settings, log: Callable[[str], None], *,
                  train_config: Any = None) -> dict[str, Path]:
    """Corpus → store → model → index, all inside ``build_dir``; returns the three paths.

    ``train_config`` (a ``training.train.TrainConfig``) lets tests and benchmarks train smaller models."""
    from retrieval.search import RetrievalIndex
    from sentencing.demo_corpus import generate_cases
    from sentencing.store import CaseStore
    from training.train import train

    start = time.perf_counter()
    log(f"building the embedded default in {settings.home}: {settings.demo_cases} synthetic demo cases…")
    cases = list(generate_cases(settings.demo_cases, settings.demo_seed))
    store_path = build_dir / "cases.sqlite"
    with CaseStore(store_path) as store:
        store.add(cases)
    log(f"  corpus stored ({time.perf_counter() - start:.1f} s); training…")
    model_dir = Path(train(cases, build_dir / "model", config=train_config))
    log(f"  model trained ({time.perf_counter() - start:.1f} s); indexing…")
    index_dir = build_dir / "index"
    RetrievalIndex.build(cases, index_dir, settings=settings)
    log(f"  index built ({time.perf_counter() - start:.1f} s)")
    return {"store": store_path, "model": model_dir, "index": index_dir}

