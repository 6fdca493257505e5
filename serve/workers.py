"""What several server processes (``sentencing serve --workers N``) share: the bundle to serve and
each key's rate limit.

One Python process computes one request at a time (the GIL), so a machine with N cores serves
with N workers. A reload arrives at one of them; it loads and validates the new bundle, then
publishes the directories in ``<home>/serving.json`` (atomically). Every worker checks that file
(one ``stat``) when a request starts and, when it changed, loads the same directories in the
background while it keeps answering from the bundle it has: requests never wait for a reload and
never fail because of one. A worker that cannot load what was published keeps its bundle and
says so in its log and metrics.

Rate limits are per key across all workers: the token buckets live in a small SQLite file beside
the keys (``<home>/ratelimit.sqlite``), updated in one short transaction per request.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sentencing.atomic import write_bytes_atomic
from serve.auth import take_token

log = logging.getLogger("liangxing.serve")

SERVING_FILE = "serving.json"
RATE_LIMIT_FILE = "ratelimit.sqlite"


class ServingPointer:
    """``<home>/serving.json``: the model and index directories every worker should serve."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._seen: tuple[int, int] | None = None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    def publish(self, model_dir: Path, index_dir: Path) -> None:
        """Point every worker at these directories (this worker has loaded them already)."""
        payload = {"model_dir": str(model_dir), "index_dir": str(index_dir), "published_by": os.getpid(),
                   "published_at": time.time()}
        self.path.parent.mkdir(parents=True, exist_ok=True)  # a new home: serve --workers N creates it
        write_bytes_atomic(self.path, json.dumps(payload, ensure_ascii=False).encode("utf-8"))
        self._seen = self._stamp()

    def mark_seen(self) -> None:
        """What the file says now is what this worker serves (at startup, after its first load)."""
        self._seen = self._stamp()

    def forget(self) -> None:
        """Report the current file as changed at the next look (a reload could not start yet)."""
        self._seen = None

    def changed(self) -> tuple[Path, Path] | None:
        """The published directories when the file changed since this worker last looked, else None."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        self._seen = stamp
        try:
            payload = json.loads(self.path.read_text(encoding="utf-8"))
            return Path(payload["model_dir"]), Path(payload["index_dir"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return None


class FollowReloads:
    """Reloads a worker's bundle in the background when another worker published a new one."""

    def __init__(self, pointer: ServingPointer, reload: Callable[[Path, Path], object],
                 on_result: Callable[[bool, Path, Path, str | None], None]) -> None:
        self.pointer = pointer
        self._reload = reload
        self._on_result = on_result
        self._busy = threading.Lock()

    def poll(self) -> None:
        """Called as a request starts: costs one ``stat`` unless a reload was published."""
        dirs = self.pointer.changed()
        if dirs is None:
            return
        if not self._busy.acquire(blocking=False):
            self.pointer.forget()  # a reload is running; look again at the next request
            return
        threading.Thread(target=self._run, args=dirs, name="follow-reload", daemon=True).start()

    def _run(self, model_dir: Path, index_dir: Path) -> None:
        try:
            self._reload(model_dir, index_dir)
        except Exception as exc:  # the worker keeps serving its bundle; the log and metrics say why
            log.error("worker %d could not load the published bundle %s, %s: %s",
                      os.getpid(), model_dir, index_dir, exc)
            self._on_result(False, model_dir, index_dir, str(exc))
        else:
            self._on_result(True, model_dir, index_dir, None)
        finally:
            self._busy.release()


class SharedRateLimiter:
    """The token bucket of :class:`serve.auth.RateLimiter` (:func:`serve.auth.take_token`), shared
    by processes through SQLite.

    The buckets are ephemeral state (a restart refills them), so the file is written without
    fsync; a transaction per request is a few tens of microseconds. The threads of one process
    take turns on a mutex first: left to SQLite, concurrent writers retry after sleeps of up to
    100 ms, and under load a process's dozens of request threads would collide on every request.
    """

    def __init__(self, path: Path, per_minute: int, burst: int, clock: Callable[[], float] = time.time) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self.path = Path(path)
        self._local = threading.local()
        self._turn = threading.Lock()
        with self._connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS buckets (key_id TEXT PRIMARY KEY, tokens REAL, at REAL)")

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            self._local.conn = conn
        return conn

    def take(self, key_id: str) -> float:
        """Take one token; 0 when allowed, else the seconds to wait (for ``Retry-After``)."""
        with self._turn:
            return self._take(key_id)

    def _take(self, key_id: str) -> float:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = self._clock()
            row = conn.execute("SELECT tokens, at FROM buckets WHERE key_id = ?", (key_id,)).fetchone()
            tokens, last = row if row is not None else (self.burst, now)
            tokens, wait = take_token(tokens, now - last, self.rate, self.burst)
            conn.execute("INSERT OR REPLACE INTO buckets (key_id, tokens, at) VALUES (?, ?, ?)", (key_id, tokens, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return wait
