"""API keys, roles and per-key rate limits.

A key is shown once, when created (``lx_<key id>_<secret>``); only its key id, a per-key salt and
``sha256(salt ‖ secret)`` are stored, in ``<home>/keys.sqlite``. Roles: ``prosecutor`` (检察官, uses
the web page and records decisions), ``integration`` (a case-management system), ``admin``
(reloads models, exports the audit trail). The office (检察院) scopes decisions: no key sees another
office's decisions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sentencing.config import Settings

KEY_PREFIX = "lx"


class KeyRole(StrEnum):
    PROSECUTOR = "prosecutor"
    INTEGRATION = "integration"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its API key identifies it."""

    key_id: str
    role: KeyRole
    office: str | None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    role: KeyRole
    office: str | None
    label: str | None
    created_at: str
    revoked_at: str | None


class UnknownKey(LookupError):
    """A key operation named a key id that does not exist."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id     TEXT PRIMARY KEY,
    salt       BLOB NOT NULL,
    digest     BLOB NOT NULL,
    role       TEXT NOT NULL,
    office     TEXT,
    label      TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class KeyStore:
    """The keys table. One connection per thread: the server verifies keys from its worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def create(self, role: KeyRole | str, office: str | None = None, label: str | None = None) -> tuple[str, KeyRecord]:
        """A new key: returns the raw key (show it once; it cannot be recovered) and its record."""
        role = KeyRole(role)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        salt = secrets.token_bytes(16)
        record = KeyRecord(key_id, role, office, label, _now(), None)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO api_keys (key_id, salt, digest, role, office, label, created_at) VALUES (?,?,?,?,?,?,?)",
                (key_id, salt, _digest(salt, secret), role.value, office, label, record.created_at),
            )
        return f"{KEY_PREFIX}_{key_id}_{secret}", record

    def verify(self, raw_key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; ``None`` for anything else."""
        parts = raw_key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        _, key_id, secret = parts
        row = self._connect().execute(
            "SELECT salt, digest, role, office, revoked_at FROM api_keys WHERE key_id = ?", (key_id,)
        ).fetchone()
        if row is None or row[4] is not None:
            return None
        salt, digest, role, office, _ = row
        if not hmac.compare_digest(_digest(salt, secret), digest):
            return None
        return Principal(key_id, KeyRole(role), office)

    def list(self) -> list[KeyRecord]:
        rows = self._connect().execute(
            "SELECT key_id, role, office, label, created_at, revoked_at FROM api_keys ORDER BY created_at, key_id"
        ).fetchall()
        return [KeyRecord(r[0], KeyRole(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def revoke(self, key_id: str) -> KeyRecord:
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (_now(), key_id)
            )
            if cur.rowcount == 0 and not conn.execute("SELECT 1 FROM api_keys WHERE key_id = ?", (key_id,)).fetchone():
                raise UnknownKey(f"no API key with id {key_id!r}")
        return next(r for r in self.list() if r.key_id == key_id)

    def count_active(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]


def keys_path(settings: Settings) -> Path:
    """Where the keys live: ``<home>/keys.sqlite``."""
    return Path(settings.home) / "keys.sqlite"


def raw_key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


class RateLimiter:
    """A token bucket per key: ``per_minute`` sustained, bursts up to ``burst`` requests."""

    def __init__(self, per_minute: int, burst: int, clock=time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds to wait (for ``Retry-After``)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens, wait = take_token(tokens, now - last, self.rate, self.burst)
            self._buckets[key_id] = (tokens, now)
            return wait


def take_token(tokens: float, elapsed: float, rate: float, burst: float) -> tuple[float, float]:
    """One request against a token bucket: (tokens left, seconds to wait; 0 when allowed).

    The bucket refills at ``rate`` per second up to ``burst``; shared by the in-process limiter
    and the one several server processes share (serve.workers.SharedRateLimiter).
    """
    tokens = min(burst, tokens + max(0.0, elapsed) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
