"""The model registry: every trained version on disk, which one serves, and how it got there.

Layout::

    <registry>/versions/<id>/model/      a model directory (training.artifacts)
    <registry>/versions/<id>/index/      the retrieval index built with it (optional)
    <registry>/versions/<id>/version.json  what the version is: parent, store sequence, metrics, decision
    <registry>/CURRENT                   the serving version's id (replaced atomically)
    <registry>/history.jsonl             append-only log of promotions and rollbacks
    <registry>/feature-cache/            training rows kept between retrains (training.feature_cache)
    <registry>/retrain.lock              held (flock) by the one retrain running on the registry

A version directory appears only once it is complete (it is built under ``versions/.tmp-*`` and
renamed), and ``CURRENT`` is swapped with ``os.replace``; so a run killed at any point leaves the
serving version and the registry consistent, with at most a ``.tmp-*`` folder to sweep.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sentencing.atomic import fsync_dir, write_bytes_atomic

CURRENT = "CURRENT"
HISTORY = "history.jsonl"
VERSION_FILE = "version.json"
LOCK = "retrain.lock"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to…)."""


class VersionInfo(BaseModel):
    """What one registered version is and why it was (or was not) promoted."""

    id: str
    created: dt.datetime
    parent: str | None = None
    store_seq: int = Field(default=0, description="the case store's sequence number up to which cases were used")
    n_cases: int = 0
    model_version: str | None = None
    ruleset_version: str | None = None
    data_hash: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    parent_metrics: dict[str, Any] = Field(default_factory=dict)
    decision: str = Field(
        default="registered",
        description="the promotion rule's verdict: accepted | rejected (what serves is CURRENT, not this)",
    )
    reason: str = ""
    timings_s: dict[str, float] = Field(default_factory=dict)
    has_index: bool = False


class ModelRegistry:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def version_dir(self, version_id: str) -> Path:
        path = self.versions_dir / version_id
        if not (path / VERSION_FILE).is_file():
            raise RegistryError(f"no version {version_id!r} in {self.root}")
        return path

    def info(self, version_id: str) -> VersionInfo:
        return VersionInfo.model_validate_json((self.version_dir(version_id) / VERSION_FILE).read_text("utf-8"))

    def versions(self) -> list[VersionInfo]:
        out = []
        for path in sorted(self.versions_dir.iterdir()):
            if path.name.startswith(".") or not (path / VERSION_FILE).is_file():
                continue
            out.append(VersionInfo.model_validate_json((path / VERSION_FILE).read_text("utf-8")))
        return sorted(out, key=lambda v: v.created)

    def current_id(self) -> str | None:
        path = self.root / CURRENT
        if not path.is_file():
            return None
        value = path.read_text("utf-8").strip()
        return value or None

    def current(self) -> VersionInfo | None:
        vid = self.current_id()
        return self.info(vid) if vid else None

    def model_dir(self, version_id: str | None = None) -> Path:
        vid = version_id or self.current_id()
        if vid is None:
            raise RegistryError(f"no version is serving in {self.root}")
        return self.version_dir(vid) / "model"

    def index_dir(self, version_id: str | None = None) -> Path | None:
        vid = version_id or self.current_id()
        if vid is None:
            raise RegistryError(f"no version is serving in {self.root}")
        path = self.version_dir(vid) / "index"
        return path if path.is_dir() else None

    def history(self) -> list[dict[str, Any]]:
        path = self.root / HISTORY
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]

    # ------------------------------------------------------------------ writing

    def sweep(self) -> list[str]:
        """Remove what killed runs left behind (incomplete ``.tmp-*`` version folders)."""
        removed = []
        for path in self.versions_dir.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        return removed

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the registry for one retrain. A second run would sweep the first one's staging folder and
        feature-cache files as a killed run's leftovers, so it is refused instead; the lock (``flock``)
        goes with the process, so a killed run never leaves the registry locked."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                raise RegistryError(f"another retrain is running on {self.root} (pid {holder}); try again once it "
                                    "has finished") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextmanager
    def staging(self, version_id: str) -> Iterator[Path]:
        """A folder to build a version in; it becomes ``versions/<id>`` only if the block completes."""
        if (self.versions_dir / version_id).exists():
            raise RegistryError(f"version {version_id!r} already exists")
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version_id}-", dir=self.versions_dir))
        try:
            yield tmp
            if not (tmp / VERSION_FILE).is_file():
                raise RegistryError("a staged version needs its version.json before it is registered")
            _fsync_tree(tmp)
            os.replace(tmp, self.versions_dir / version_id)
            fsync_dir(self.versions_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def write_info(self, folder: Path, info: VersionInfo) -> None:
        _write_text(folder / VERSION_FILE, info.model_dump_json(indent=1))

    def promote(self, version_id: str, *, reason: str = "") -> None:
        """Make ``version_id`` the serving version (an atomic switch of ``CURRENT``)."""
        self.version_dir(version_id)
        previous = self.current_id()
        _write_text(self.root / CURRENT, version_id + "\n")
        self._log({"event": "promote", "version": version_id, "previous": previous, "reason": reason})

    def serving_stack(self) -> list[str]:
        """Versions in the order they came to serve: a promotion pushes, a rollback pops."""
        stack: list[str] = []
        for event in self.history():
            if event["event"] == "promote":
                stack.append(event["version"])
            elif event["event"] == "rollback" and stack:
                stack.pop()
        return stack

    def rollback(self, *, reason: str = "") -> str:
        """Serve the version that served before the current one; returns its id."""
        current = self.current_id()
        stack = self.serving_stack()
        while stack and stack[-1] == current:
            stack.pop()
        while stack and not (self.versions_dir / stack[-1] / VERSION_FILE).is_file():
            stack.pop()
        if not stack:
            raise RegistryError("no earlier version to roll back to")
        _write_text(self.root / CURRENT, stack[-1] + "\n")
        self._log({"event": "rollback", "version": stack[-1], "previous": current, "reason": reason})
        return stack[-1]

    def _log(self, event: dict[str, Any]) -> None:
        event = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **event}
        with open(self.root / HISTORY, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
