"""The embedded default: on first start, fill <home> with a case store, a trained model and an index.

With no store yet, the store is the synthetic demo corpus (合成示例数据); with a store already in
<home> (cases imported earlier), the model and index are built from it and it is left untouched.

Crash-safe: everything new is built inside ``<home>/.bootstrap-<id>/`` and renamed into place only
when complete (store, then index, then model). A model or index left from an interrupted build is
set aside (``*.incomplete-<time>``), never deleted, and built again. So is a model and index this
code cannot serve: built under an older rule set (the charge catalogue's ``version``), feature spec
or file format, or failing the probe case. Whether it can serve is asked of the loader the service
itself uses (``serve.recommender.load_bundle``), not of a list of version fields kept here: they are
set aside as ``*.stale-<time>`` and built again from the store, which is kept.
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
    """Build what <home> lacks; returns True if it built anything.

    ``train_config`` (a ``training.train.TrainConfig``) lets tests and benchmarks train smaller models.
    """
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    if is_built(settings):
        why = _unservable(settings)
        if why is None:
            return False
        log(f"the embedded default in {settings.home} cannot serve ({why}); building it again")
        _set_aside(settings, "stale", log)
    else:
        _set_aside(settings, "incomplete", log)
    build_dir = home / f".bootstrap-{uuid.uuid4().hex[:8]}"
    build_dir.mkdir()
    try:
        built = build_default(build_dir, settings, log, train_config=train_config)
        if "store" in built:
            os.replace(built["store"], settings.store_path)
        os.replace(built["index"], settings.index_path)
        os.replace(built["model"], settings.model_path)
    except Exception as exc:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise BootstrapError(
            f"building the embedded default in {build_dir} failed: {type(exc).__name__}: {exc}"
        ) from exc
    shutil.rmtree(build_dir, ignore_errors=True)
    return True


def _unservable(settings: Settings) -> str | None:
    """Why the built model and index cannot serve with this code, or None when they can.

    An upgrade that changes the rule set, the feature spec or a file format leaves a default the
    service would refuse at every start (never ready). The embedded default is this module's to
    rebuild, and it is set aside rather than deleted, so asking the real loader is safe and exact.
    """
    from serve.recommender import BundleError, load_bundle

    try:
        load_bundle(settings.model_path, settings.index_path)
    except BundleError as exc:
        return str(exc)
    return None


def _set_aside(settings: Settings, why: str, log: Callable[[str], None]) -> None:
    """Move the model and index (or whichever of them exists) aside, so that nothing is lost and both are rebuilt."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    for path in (settings.index_path, settings.model_path):
        if path.exists():
            aside = path.with_name(f"{path.name}.{why}-{stamp}")
            os.replace(path, aside)
            log(f"set aside an earlier build ({why}): {path} → {aside}")


def build_default(build_dir: Path, settings: Settings, log: Callable[[str], None], *,
                  train_config: Any = None) -> dict[str, Path]:
    """(Corpus → store) → model → index inside ``build_dir``; returns the paths built."""
    from sentencing.demo_corpus import generate_cases
    from sentencing.store import CaseStore

    start = time.perf_counter()
    built: dict[str, Path] = {}
    if settings.store_path.is_file():
        with CaseStore(settings.store_path) as store:
            cases = list(store.iter_cases())
        log(f"building model and index from the {len(cases)} cases in {settings.store_path}…")
    else:
        log(f"building the embedded default in {settings.home}: {settings.demo_cases} synthetic demo cases…")
        cases = list(generate_cases(settings.demo_cases, settings.demo_seed))
        built["store"] = build_dir / "cases.sqlite"
        with CaseStore(built["store"]) as store:
            store.add(cases)
        log(f"  corpus stored ({time.perf_counter() - start:.1f} s)")
    from retrieval.search import RetrievalIndex
    from training.train import train

    built["model"] = Path(train(cases, build_dir / "model", config=train_config))
    log(f"  model trained ({time.perf_counter() - start:.1f} s)")
    built["index"] = build_dir / "index"
    RetrievalIndex.build(cases, built["index"], settings=settings)
    log(f"  index built ({time.perf_counter() - start:.1f} s)")
    return built
