"""The case store: every case the service knows, in one SQLite file (stdlib sqlite3, WAL).

One table, one row per case: its id, content hash, source, synthetic flag, province, date, primary
charge and the case as zlib-compressed JSON. ``seq`` (the rowid, AUTOINCREMENT) is a sequence number
that only grows: a case gets a new one when it is added and when its content changes, so
"cases added or changed since version N" is ``iter_cases(after_rowid=N)``.

Import semantics (decided here, stated in the README): :meth:`CaseStore.add` runs in one
transaction. The same id with the same content hash is skipped; the same id with different content
replaces the stored case (counted as ``updated``, with a new ``seq``). If anything fails — a bad
case, an error raised by the iterable being imported — nothing of that call is stored: all or
nothing, and what was stored before is untouched.

A bulk import parses in worker processes: each makes the :class:`CaseRow` of its cases
(:func:`case_row`: payload, hash, compressed body, indexed columns) and :meth:`CaseStore.add` takes
those rows as it takes cases, so the writing process only runs SQL.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sentencing.case import Case

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    synthetic INTEGER NOT NULL,
    province TEXT,
    date TEXT,
    primary_charge TEXT,
    defendants INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS cases_source ON cases(source, seq);
CREATE INDEX IF NOT EXISTS cases_synthetic ON cases(synthetic, seq);
CREATE INDEX IF NOT EXISTS cases_province ON cases(province);
CREATE INDEX IF NOT EXISTS cases_charge ON cases(primary_charge);
CREATE INDEX IF NOT EXISTS cases_date ON cases(date);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SCHEMA_VERSION = "1"


@dataclass
class ImportReport:
    """What one :meth:`CaseStore.add` call did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    """Same id and same content: skipped as a duplicate."""
    last_seq: int = 0
    """The highest sequence number in the store after the call."""

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged

    def summary(self) -> str:
        return f"added {self.added}, updated {self.updated}, duplicates skipped {self.unchanged}"


@dataclass(frozen=True, slots=True)
class StoredCase:
    seq: int
    case: Case


class StoredKey(NamedTuple):
    """A stored case's identity without its body."""

    seq: int
    id: str
    content_hash: str
    synthetic: bool


def _payload(case: Case) -> bytes:
    """The JSON that :meth:`Case.content_hash` hashes; stored compressed, so one dump serves both."""
    return case.model_dump_json(exclude={"schema_version"}).encode()


class CaseRow(NamedTuple):
    """One case as the store writes it: plain values, cheap to send from the process that parsed it."""

    id: str
    content_hash: str
    """``sha256`` of the payload: equals :meth:`Case.content_hash`."""
    source: str
    synthetic: int
    province: str | None
    date: str | None
    primary_charge: str | None
    defendants: int
    body: bytes
    """The payload, zlib-compressed."""


def case_row(case: Case) -> CaseRow:
    """The row :meth:`CaseStore.add` writes for ``case``; module-level, so a worker process can run it."""
    payload = _payload(case)
    return _row(case, payload, hashlib.sha256(payload).hexdigest())


def _row(case: Case, payload: bytes, digest: str) -> CaseRow:
    charges = case.charge_names
    return CaseRow(
        case.id,
        digest,
        case.source,
        int(case.synthetic),
        case.province,
        case.date.isoformat() if case.date else None,
        charges[0] if charges else None,
        len(case.defendants),
        zlib.compress(payload, 3),
    )


def _decode(body: bytes) -> Case:
    return Case.model_validate_json(zlib.decompress(body))


class CaseStore:
    """A SQLite file of cases; safe to share between threads of one process (one writer at a time)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def add(self, cases: Iterable[Case | CaseRow]) -> ImportReport:
        """Add or update cases in one transaction (all or nothing); see the module docstring.

        Takes :class:`Case` objects or their :func:`case_row` rows (made in a parsing worker).
        """
        report = ImportReport()
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for case in cases:
                    self._put(cur, case, report)
                report.last_seq = self._max_seq(cur)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return report

    def _put(self, cur: sqlite3.Cursor, case: Case | CaseRow, report: ImportReport) -> None:
        row: CaseRow | None
        if isinstance(case, CaseRow):
            row, case_id, digest = case, case.id, case.content_hash
        elif isinstance(case, Case):
            payload = _payload(case)
            row, case_id, digest = None, case.id, hashlib.sha256(payload).hexdigest()  # == case.content_hash()
        else:
            raise TypeError(f"CaseStore.add takes Case objects or CaseRow rows, got {type(case).__name__}")
        found = cur.execute("SELECT content_hash FROM cases WHERE id = ?", (case_id,)).fetchone()
        if found is not None:
            if found[0] == digest:
                report.unchanged += 1
                return
            cur.execute("DELETE FROM cases WHERE id = ?", (case_id,))
            report.updated += 1
        else:
            report.added += 1
        if row is None:
            row = _row(case, payload, digest)  # compressed only when it is written
        cur.execute(
            "INSERT INTO cases(id, content_hash, source, synthetic, province, date, primary_charge, defendants, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def delete(self, case_id: str) -> bool:
        """Remove a case; True when it was there."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM cases WHERE id = ?", (case_id,))
            return cur.rowcount > 0

    # ------------------------------------------------------------------ reading

    def get(self, case_id: str) -> Case | None:
        with self._lock:
            row = self._conn.execute("SELECT body FROM cases WHERE id = ?", (case_id,)).fetchone()
        return _decode(row[0]) if row else None

    def get_many(self, ids: Sequence[str]) -> list[Case]:
        """The cases with these ids, in the order asked; ids not in the store are left out."""
        found: dict[str, Case] = {}
        unique = list(dict.fromkeys(ids))
        for k in range(0, len(unique), 500):
            chunk = unique[k:k + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._conn.execute(f"SELECT id, body FROM cases WHERE id IN ({marks})", chunk).fetchall()
            found.update((i, _decode(b)) for i, b in rows)
        return [found[i] for i in ids if i in found]

    def keys(self, *, upto: int) -> list[StoredKey]:
        """Every case up to sequence ``upto`` without its body, in sequence order: enough to tell
        which cases changed since a run, without decoding a million bodies."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, id, content_hash, synthetic FROM cases WHERE seq <= ? ORDER BY seq", (upto,)
            ).fetchall()
        return [StoredKey(seq, case_id, digest, bool(synthetic)) for seq, case_id, digest, synthetic in rows]

    def iter_seqs(self, seqs: Sequence[int], *, batch_size: int = 500) -> Iterator[StoredCase]:
        """The cases with these sequence numbers, in sequence order; numbers not in the store are left out."""
        wanted = sorted(set(seqs))
        for k in range(0, len(wanted), batch_size):
            chunk = wanted[k:k + batch_size]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._conn.execute(f"SELECT seq, body FROM cases WHERE seq IN ({marks}) ORDER BY seq",
                                          chunk).fetchall()
            for seq, body in rows:
                yield StoredCase(seq, _decode(body))

    def seq_of(self, case_id: str) -> int | None:
        """The case's sequence number (grows with every add or change)."""
        with self._lock:
            row = self._conn.execute("SELECT seq FROM cases WHERE id = ?", (case_id,)).fetchone()
        return row[0] if row else None

    def max_seq(self) -> int:
        """The highest sequence number so far (0 when empty): a version to retrain "since"."""
        with self._lock:
            return self._max_seq(self._conn.cursor())

    @staticmethod
    def _max_seq(cur: sqlite3.Cursor) -> int:
        row = cur.execute("SELECT seq FROM sqlite_sequence WHERE name = 'cases'").fetchone()
        return int(row[0]) if row else 0

    def count(self, *, source: str | None = None, synthetic: bool | None = None, after_rowid: int | None = None) -> int:
        """Stored cases, optionally only those with a sequence number above ``after_rowid``."""
        where, args = self._filters(source, synthetic, after_rowid)
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM cases{where}", args).fetchone()[0])

    @staticmethod
    def _filters(source: str | None, synthetic: bool | None, after: int | None) -> tuple[str, list[object]]:
        clauses: list[str] = []
        args: list[object] = []
        if source is not None:
            clauses.append("source = ?")
            args.append(source)
        if synthetic is not None:
            clauses.append("synthetic = ?")
            args.append(int(synthetic))
        if after is not None:
            clauses.append("seq > ?")
            args.append(after)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def iter_stored(
        self,
        *,
        batch_size: int = 1000,
        source: str | None = None,
        synthetic: bool | None = None,
        after_rowid: int | None = None,
    ) -> Iterator[StoredCase]:
        """Cases with their sequence numbers, in sequence order, ``batch_size`` rows at a time.

        Streams by keyset (``seq > last``), so memory stays flat at any store size and writes
        between batches are allowed.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        last = after_rowid or 0
        while True:
            where, args = self._filters(source, synthetic, last)
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT seq, body FROM cases{where} ORDER BY seq LIMIT ?", [*args, batch_size]
                ).fetchall()
            for seq, body in rows:
                yield StoredCase(seq, _decode(body))
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    def iter_cases(
        self,
        *,
        batch_size: int = 1000,
        source: str | None = None,
        synthetic: bool | None = None,
        after_rowid: int | None = None,
    ) -> Iterator[Case]:
        """Cases in sequence order (see :meth:`iter_stored`); ``after_rowid`` gives those added since."""
        stream = self.iter_stored(batch_size=batch_size, source=source, synthetic=synthetic, after_rowid=after_rowid)
        for stored in stream:
            yield stored.case

    def ids(self) -> Iterator[str]:
        with self._lock:
            rows = self._conn.execute("SELECT id FROM cases ORDER BY seq").fetchall()
        for (i,) in rows:
            yield i
