"""The audit trail (审计记录): every recommendation, decision and reload, appended to SQLite.

Append-only by construction: this module issues only INSERT and SELECT, and triggers abort any
UPDATE or DELETE on the table, so a row once written is never rewritten. The file survives
restarts; ``sentencing audit export`` reads it as JSON lines.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sentencing.config import Settings
from serve.auth import Principal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,
    event           TEXT NOT NULL,
    request_id      TEXT,
    key_id          TEXT,
    office          TEXT,
    input_hash      TEXT,
    model_version   TEXT,
    ruleset_version TEXT,
    outputs         TEXT,
    decision        TEXT,
    override_reason TEXT
);
CREATE INDEX IF NOT EXISTS audit_events_request ON audit_events (request_id, event);
CREATE INDEX IF NOT EXISTS audit_events_at ON audit_events (at);
CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: DELETE refused'); END;
"""


def audit_path(settings: Settings) -> Path:
    """Where the audit trail lives: ``<home>/audit.sqlite``."""
    return Path(settings.home) / "audit.sqlite"


class AuditEvent(StrEnum):
    RECOMMENDATION = "recommendation"
    DECISION = "decision"
    RELOAD = "reload"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: dt.datetime
    event: AuditEvent
    request_id: str | None
    key_id: str | None
    office: str | None
    input_hash: str | None
    model_version: str | None
    ruleset_version: str | None
    outputs: dict[str, Any] | None
    decision: dict[str, Any] | None
    override_reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "event": self.event.value,
            "request_id": self.request_id,
            "key_id": self.key_id,
            "office": self.office,
            "input_hash": self.input_hash,
            "model_version": self.model_version,
            "ruleset_version": self.ruleset_version,
            "outputs": self.outputs,
            "decision": self.decision,
            "override_reason": self.override_reason,
        }


_COLUMNS = ("seq, at, event, request_id, key_id, office, input_hash, model_version, ruleset_version, outputs, "
            "decision, override_reason")


def _record(row: tuple) -> AuditRecord:
    return AuditRecord(
        seq=row[0],
        at=dt.datetime.fromisoformat(row[1]),
        event=AuditEvent(row[2]),
        request_id=row[3],
        key_id=row[4],
        office=row[5],
        input_hash=row[6],
        model_version=row[7],
        ruleset_version=row[8],
        outputs=json.loads(row[9]) if row[9] else None,
        decision=json.loads(row[10]) if row[10] else None,
        override_reason=row[11],
    )


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class AuditLog:
    """Appends to and reads ``audit_events``; safe to share between the server's threads."""

    def __init__(self, path: Path, clock=lambda: dt.datetime.now(dt.UTC)) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed row survives a crash of the process; only an OS crash or
        # power loss can lose the last transactions.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(
        self,
        event: AuditEvent,
        principal: Principal | None,
        *,
        request_id: str | None = None,
        input_hash: str | None = None,
        model_version: str | None = None,
        ruleset_version: str | None = None,
        outputs: dict[str, Any] | None = None,
        decision: dict[str, Any] | None = None,
        override_reason: str | None = None,
    ) -> AuditRecord:
        at = self._clock()
        values = (
            at.isoformat(),
            event.value,
            request_id,
            principal.key_id if principal else None,
            principal.office if principal else None,
            input_hash,
            model_version,
            ruleset_version,
            _dumps(outputs),
            _dumps(decision),
            override_reason,
        )
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO audit_events (at, event, request_id, key_id, office, input_hash, model_version, "
                "ruleset_version, outputs, decision, override_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                values,
            )
            seq = cur.lastrowid
        assert seq is not None
        return _record((seq, *values))

    def recommendation(self, request_id: str) -> AuditRecord | None:
        """The recommendation event of ``request_id`` (for checking a decision against it)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM audit_events WHERE request_id = ? AND event = ? ORDER BY seq LIMIT 1",
                (request_id, AuditEvent.RECOMMENDATION.value),
            ).fetchone()
        return _record(row) if row else None

    def events(self, since: dt.datetime | None = None, *, batch: int = 1000) -> Iterator[AuditRecord]:
        """All events in order of writing, from ``since`` (inclusive) when given."""
        last = 0
        since_text = since.astimezone(dt.UTC).isoformat() if since else ""
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM audit_events WHERE seq > ? AND at >= ? ORDER BY seq LIMIT ?",
                    (last, since_text, batch),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _record(row)
            last = rows[-1][0]

    def count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
