"""Similar-case search over the on-disk retrieval bundle (encoder + FAISS + sparse TF-IDF + metadata).

One entry per sentenced defendant: its document is the case's facts plus that defendant's
charges and circumstances (retrieval.text), its metadata row carries the structured fields that
filters, cohorts and why-similar reasons use. Hybrid ranking fuses the dense and sparse rankings by
weighted reciprocal rank (retrieval.fusion); results are spread across provinces and courts so that ten hits are not
ten judgments of one court.

Bundle layout (``index_dir``)::

    manifest.json        current generation, counts, encoder fingerprint, factory
    encoder/             the sentence-transformers model directory
    rows.jsonl           display fields of every row, append-only (offsets say which lines count)
    gen-NNNNNN/          vectors.faiss, meta/*.npy, offsets.npy, case_ids.txt, vocab.json, tokens.txt

Saving writes a new generation and then switches ``manifest.json`` atomically, so a failure while
saving leaves the previous index intact.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from retrieval.case_ids import CaseIds
from retrieval.cohort import FORMS, CohortQuery, CohortStats, HistogramBin, ProvinceCohort, cohort_stats
from retrieval.encoder import Encoder, EncoderParams, EncoderProcess, load_encoder, train_encoder
from retrieval.fusion import fuse
from retrieval.index import (
    DATE_UNKNOWN,
    ChargeOrder,
    FilterBases,
    IndexFormatError,
    Metadata,
    RowFilter,
    SearchKnobs,
    VectorIndex,
    Vocab,
    default_factory,
    live_in_scope,
    write_json,
)
from retrieval.pairs import PairItem, weak_pairs
from retrieval.profile import (
    CIRCUMSTANCE_BITS,
    DefendantProfile,
    charge_family,
    circumstance_mask,
    profile_of,
)
from retrieval.sparse import NO_GROUP, SparseIndex, group_key
from retrieval.text import case_document, masked_name, tokenize, tokenize_query
from sentencing.atomic import replace_dir
from sentencing.case import Case, Defendant, Role, trusted
from sentencing.config import Settings, load_settings
from sentencing.guideline import GuidelineResult
from sentencing.regions import BY_CODE
from sentencing.sentence import Sentence, format_sentence

__all__ = [
    "CohortStats",
    "HistogramBin",
    "ProvinceCohort",
    "RetrievalIndex",
    "RetrievalQueryError",
    "SimilarCase",
]

FORMAT_VERSION = 1
ROLES: tuple[Role, ...] = tuple(Role)
EPOCH = dt.date(1970, 1, 1)
OVERSAMPLE = 20
"""Candidates fetched per wanted result before the spread (k' = 20·k, at least 100)."""
CHUNK = 4096
SPILL_ROWS = 65_536
"""A build writes its display rows out every this many rows (about 20 MB), not all at the end."""
VOCAB_NAMES = ("charges", "families", "provinces", "tiers", "courts")

ProvinceScope = Literal["other", "own", "any"]
Mode = Literal["hybrid", "dense", "sparse"]


@dataclass(frozen=True, slots=True)
class RowSelection:
    """Which indexed rows a search ranks within: province scope, same charge, same tier, a date range."""

    scope: ProvinceScope = "other"
    same_charge: bool = True
    same_tier: bool = False
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @property
    def by_columns(self) -> bool:
        """Whether the filter compares metadata columns (tier, dates), beyond charge and province bitmaps."""
        return self.same_tier or self.date_from is not None or self.date_to is not None


class RetrievalQueryError(ValueError):
    """A search or cohort request that cannot be answered as asked (names the field)."""


class SimilarCase(BaseModel):
    case_id: str
    court: str | None
    province: str | None
    """Province code (``JS``)."""
    province_name: str | None = None
    date: dt.date | None
    charges: list[str]
    defendant: str
    """Masked name as published (张某)."""
    sentence: Sentence
    sentence_text: str = ""
    score: float
    """Fused rank score (hybrid), cosine similarity (dense) or TF-IDF cosine (sparse)."""
    dense_rank: int | None = None
    sparse_rank: int | None = None
    matched: list[str] = Field(default_factory=list)
    """Why it is similar, in Chinese: shared charge, tier, role, circumstances, amount ratio."""
    tier: str | None = None
    role: str | None = None
    circumstances: list[str] = Field(default_factory=list)
    synthetic: bool


class _Display(BaseModel):
    """A row's display fields as stored in rows.jsonl (see ``_rows_of``), decoded straight from the
    JSON bytes by pydantic-core: half the cost of ``json.loads``. The sentence stays a dict here:
    :func:`_sentence` validates each distinct one once."""

    model_config = ConfigDict(extra="ignore")

    case_id: str
    defendant: str = "某"
    court: str | None = None
    date: str | None = None
    charges: list[str] = Field(default_factory=list)
    sentence: dict[str, Any]
    sentence_text: str | None = None
    synthetic: bool = False


@functools.lru_cache(maxsize=16_384)
def _cached_sentence(fields: tuple[tuple[str, Any], ...]) -> Sentence:
    return Sentence.model_validate(dict(fields))


def _sentence(fields: dict[str, Any]) -> Sentence:
    """The stored sentence as a :class:`Sentence`, validated once per distinct sentence: a corpus
    holds a few thousand distinct sentences, and the model's consistency check (Python) costs more
    than decoding the rest of the row. Sentences are frozen, so hits share them."""
    try:
        return _cached_sentence(tuple(fields.items()))
    except TypeError:  # an unhashable value (not written by ``_rows_of``): validated, and rejected, as given
        return Sentence.model_validate(fields)


_SIMILAR_FIELDS = frozenset(SimilarCase.model_fields)


@dataclass
class _Row:
    """One defendant ready to index."""

    case_id: str
    doc: str
    profile: DefendantProfile
    sentence: Sentence
    display: dict[str, Any]
    synthetic: bool


def _days(day: dt.date | None) -> int:
    return (day - EPOCH).days if day is not None else int(DATE_UNKNOWN)


def _rows_of(case: Case) -> Iterator[_Row]:
    for d in case.defendants:
        if d.sentence is None:
            continue  # an unjudged defendant is no precedent
        profile = profile_of(case, d)
        yield _Row(
            case_id=case.id,
            doc=case_document(case, d),
            profile=profile,
            sentence=d.sentence,
            synthetic=case.synthetic,
            display={
                "case_id": case.id,
                "defendant": masked_name(d.name),
                "court": profile.court,
                "date": case.date.isoformat() if case.date else None,
                "charges": list(profile.charges),
                "sentence": d.sentence.model_dump(mode="json", exclude_defaults=True),
                "sentence_text": format_sentence(d.sentence),
                "synthetic": case.synthetic,
            },
        )


class _RowStore:
    """Display fields per row in an append-only JSON-lines file; ``offsets`` say where each row is.

    A hit reads just its own line (``pread``, the file advised random access). Through a memory
    map, each row read brought the 64 KB around it into the process (the kernel maps pages around
    a fault), so after some thousands of searches every server worker held the whole file as
    resident memory (200 MB of the 387 MB at a million rows, counted once per worker). A read is a
    system call: about 6 µs a row against 2 through the map, 0.2 ms of a 3-defendant request.
    """

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        self.path = path
        self.offsets = offsets
        self.pending: list[bytes] = []
        self._file: BinaryIO | None = None
        if len(offsets) and path.stat().st_size > 0:
            self._open()

    def _open(self) -> None:
        file = open(self.path, "rb", buffering=0)  # held for the store's life, closed with it
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
        self._file = file

    def __len__(self) -> int:
        return len(self.offsets) + len(self.pending)

    def append(self, display: dict[str, Any]) -> None:
        self.pending.append(json.dumps(display, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")

    def get(self, row: int) -> dict[str, Any]:
        return json.loads(self.raw(row))

    def spill(self) -> None:
        """Write the pending rows to the file now and let them go (a build, in its private staging
        folder: at a million rows they held some 400 MB until the end)."""
        self.offsets = self.flush()
        self.pending = []
        if self._file is None:
            self._open()

    def raw(self, row: int) -> bytes:
        """The JSON line of a row (without its newline)."""
        if row >= len(self.offsets):
            return self.pending[row - len(self.offsets)].rstrip(b"\n")
        start = int(self.offsets[row])
        line = b""
        if self._file is not None:
            fd = self._file.fileno()
            if row + 1 < len(self.offsets):  # the next row starts right after this one's newline
                line = os.pread(fd, max(0, int(self.offsets[row + 1]) - start), start)
            else:
                while b"\n" not in line:
                    chunk = os.pread(fd, 4096, start + len(line))
                    if not chunk:
                        break
                    line += chunk
        if not line:
            raise IndexFormatError(f"{self.path}: row {row} lies beyond the end of the file")
        end = line.find(b"\n")
        return line[:end] if end >= 0 else line

    def flush(self) -> np.ndarray:
        """Append pending rows to the file; returns the new offsets (the caller commits them)."""
        if not self.pending:
            return np.asarray(self.offsets, dtype=np.int64)
        with self.path.open("ab") as fh:
            start = fh.tell()
            fh.write(b"".join(self.pending))
            fh.flush()
            os.fsync(fh.fileno())
        lengths = np.fromiter((len(b) for b in self.pending), dtype=np.int64, count=len(self.pending))
        new = start + np.concatenate(([0], np.cumsum(lengths)[:-1]))
        return np.concatenate([np.asarray(self.offsets, dtype=np.int64), new])


class _CaseRows:
    """The rows of each case id, as sorted 64-bit hashes of the ids (16 bytes a row).

    A dict of lists would take a quarter of a gigabyte at a million rows, built by every worker
    of the service, which only asks whether a query's own case is indexed (to keep it out of its
    cohort). Rows appended to ``case_ids`` are taken in at the next lookup.
    """

    def __init__(self, case_ids: CaseIds) -> None:
        self._case_ids = case_ids
        self._table: tuple[np.ndarray, np.ndarray, int] = (np.empty(0, np.int64), np.empty(0, np.int64), 0)
        self._lock = threading.Lock()

    def _current(self) -> tuple[np.ndarray, np.ndarray, int]:
        table = self._table
        if table[2] == len(self._case_ids):
            return table
        with self._lock:
            hashes, rows, done = self._table
            n = len(self._case_ids)
            if done < n:
                new = np.fromiter((hash(c) for c in self._case_ids[done:n]), dtype=np.int64, count=n - done)
                hashes = np.concatenate([hashes, new])
                rows = np.concatenate([rows, np.arange(done, n, dtype=np.int64)])
                order = np.argsort(hashes, kind="stable")
                self._table = (hashes[order], rows[order], n)
            return self._table

    def get(self, case_id: str) -> list[int]:
        hashes, rows, _n = self._current()
        h = hash(case_id)
        lo, hi = np.searchsorted(hashes, h, "left"), np.searchsorted(hashes, h, "right")
        return sorted(int(r) for r in rows[lo:hi] if self._case_ids[r] == case_id)


class RetrievalIndex:
    """The on-disk bundle and its searches; see the module docstring for the layout."""

    def __init__(
        self,
        directory: Path,
        encoder: Encoder,
        vectors: VectorIndex,
        meta: Metadata,
        vocab: dict[str, Vocab],
        rows: _RowStore,
        case_ids: CaseIds,
        sparse: SparseIndex | None,
        manifest: dict[str, Any],
        settings: Settings,
    ) -> None:
        self.directory = directory
        self.encoder = encoder
        self.vectors = vectors
        self.meta = meta
        self.vocab = vocab
        self.rows = rows
        self.case_ids = case_ids
        self.sparse = sparse
        self.manifest = manifest
        self.settings = settings
        self.knobs = SearchKnobs(ef_search=settings.retrieval_ef_search, nprobe=settings.retrieval_nprobe,
                                 refine_k_factor=settings.retrieval_refine_k_factor)
        self._by_case = _CaseRows(case_ids)
        self._filters: dict[tuple, RowFilter] = {}
        self._generation = 0
        """Bumped by every change to the rows, so that cached filters of the old rows go unused."""
        self._order: tuple[int, ChargeOrder] | None = None
        self._bases: tuple[int, FilterBases] | None = None
        self._order_lock = threading.RLock()  # the filter bases are built from the order, under it

    # ----------------------------------------------------------------------------- building

    @classmethod
    def build(
        cls,
        cases: Iterable[Case],
        out_dir: Path,
        *,
        encoder_dir: Path | None = None,
        factory: str | None = None,
        settings: Settings | None = None,
        expected_rows: int | None = None,
    ) -> RetrievalIndex:
        """Index sentenced defendants of ``cases`` (streamed: Case objects are not kept).

        Without ``encoder_dir`` the static encoder is trained on the first ``retrieval_train_max``
        defendants. The bundle is built beside ``out_dir`` and swapped in only when complete.
        ``expected_rows``, when the caller knows it, skips the sparse side's tokens from the start
        if the bundle will be too large for it; otherwise they are made for the first
        ``retrieval_sparse_max_rows`` rows and dropped there.
        """
        settings = settings or load_settings()
        out_dir = Path(out_dir)
        staging = out_dir.with_name(f".{out_dir.name}.building-{os.getpid()}")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        started = time.perf_counter()
        try:
            stream = (row for case in cases for row in _rows_of(case))
            head: list[_Row] = []
            for row in stream:
                head.append(row)
                if len(head) >= settings.retrieval_train_max:
                    break
            if not head:
                raise ValueError("no sentenced defendant among the cases: nothing to index")
            encoder_record = _prepare_encoder(head, staging / "encoder", encoder_dir, settings)
            encoder = load_encoder(staging / "encoder")
            index = cls._empty(staging, encoder, factory, settings)
            index.manifest["encoder"] = encoder_record
            sparse_max = settings.retrieval_sparse_max_rows
            wants_sparse = sparse_max > 0 and (expected_rows is None or expected_rows <= sparse_max)
            sparse_tokens: list[list[str]] | None = [] if wants_sparse else None
            # A batch is encoded in the background while the next batch's rows are prepared
            # (documents, guideline profiles: Python): in a thread at first (the tokenizer runs
            # without the GIL), in a child process once the build is large (the rest of the encoder
            # holds the GIL too; see EncoderProcess).
            pending: tuple[list[_Row], Future[np.ndarray]] | None = None
            batch: list[_Row] = []
            rows_seen = 0
            process: EncoderProcess | None = None

            def take(encoded: tuple[list[_Row], Future[np.ndarray]]) -> None:
                """Append a batch whose vectors are on their way; the display rows go to disk now and then."""
                nonlocal sparse_tokens
                sparse_tokens = index._ingest(encoded[0], sparse_tokens, migrate=factory is None,
                                              vecs=encoded[1].result())
                if len(index.rows.pending) >= SPILL_ROWS:
                    index.rows.spill()

            try:
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as encoding:
                    for row in _chain(head, stream):
                        batch.append(row)
                        if len(batch) >= CHUNK:
                            rows_seen += len(batch)
                            if (process is None and rows_seen > settings.retrieval_encode_process_rows
                                    and EncoderProcess.possible(encoder)):
                                process = EncoderProcess(staging / "encoder")
                            docs = [r.doc for r in batch]
                            ready = process.submit(docs) if process else encoding.submit(encoder.encode, docs)
                            if pending is not None:
                                take(pending)
                            pending, batch = (batch, ready), []
                    if pending is not None:
                        take(pending)
            finally:
                child_peak = process.close() if process is not None else None
            index.manifest["encoded_in_process"] = process is not None
            if child_peak is not None:
                index.manifest["encoder_process_peak_rss_mb"] = round(child_peak)
            if batch:
                sparse_tokens = index._ingest(batch, sparse_tokens, migrate=factory is None)
            index.sparse = (SparseIndex.from_tokens(sparse_tokens, index._sparse_groups())
                            if sparse_tokens is not None else None)
            index.manifest["sparse"] = index.sparse is not None
            if index.sparse is None:
                rows = f"{expected_rows} rows expected" if not wants_sparse and expected_rows else "more rows"
                index.manifest["sparse_note"] = (
                    f"sparse side not built: {rows}, at most {sparse_max} "
                    "(LIANGXING_RETRIEVAL_SPARSE_MAX_ROWS)"
                )
            index.manifest["build_seconds"] = round(time.perf_counter() - started, 2)
            index.save()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        replace_dir(staging, out_dir)
        return cls.load(out_dir, settings=settings)

    @classmethod
    def _empty(cls, directory: Path, encoder: Encoder, factory: str | None, settings: Settings) -> RetrievalIndex:
        chosen = factory or settings.retrieval_factory or "IDMap2,Flat"
        vectors = VectorIndex.create(encoder.dim, chosen)
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "generation": 0,
            "factory": vectors.factory,
            "factory_source": "argument" if factory else ("settings" if settings.retrieval_factory else "size"),
            "dim": encoder.dim,
            "encoder_fingerprint": encoder.fingerprint,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        (directory / "rows.jsonl").touch()
        return cls(
            directory,
            encoder,
            vectors,
            Metadata(),
            {name: Vocab() for name in VOCAB_NAMES},
            _RowStore(directory / "rows.jsonl", np.empty(0, np.int64)),
            CaseIds(),
            None,
            manifest,
            settings,
        )

    def _ingest(
        self, batch: list[_Row], sparse_tokens: list[list[str]] | None, *, migrate: bool,
        vecs: np.ndarray | None = None,
    ) -> list[list[str]] | None:
        """Encode and append a batch of rows (vectors, metadata, display); returns the sparse side's tokens."""
        self._generation += 1
        if vecs is None:
            vecs = self.encoder.encode([r.doc for r in batch])
        n0 = len(self.rows)
        ids = np.arange(n0, n0 + len(batch), dtype=np.int64)
        if migrate and self.manifest["factory_source"] == "size":
            self._maybe_migrate(n0 + len(batch), vecs)
        self.vectors.train(vecs)
        self.vectors.add(vecs, ids)
        self.meta.append(self._columns(batch))
        for r in batch:
            self.rows.append(r.display)
            self.case_ids.append(r.case_id)
        if sparse_tokens is not None:
            if n0 + len(batch) > self.settings.retrieval_sparse_max_rows:
                return None
            sparse_tokens.extend(tokenize(r.doc) for r in batch)
        return sparse_tokens

    def _maybe_migrate(self, n_rows: int, sample: np.ndarray) -> None:
        """Past ``retrieval_exact_max`` rows, move the vectors from the exact index to the large one."""
        target = default_factory(
            n_rows, exact_max=self.settings.retrieval_exact_max, large=self.settings.retrieval_large_factory
        )
        if target == self.vectors.factory or not self.vectors.exact:
            return
        new = VectorIndex.create(self.encoder.dim, target)
        ids = np.flatnonzero(~np.asarray(self.meta["deleted"])).astype(np.int64) if len(self.meta) else np.empty(0)
        old = self.vectors.reconstruct(ids) if ids.size else np.empty((0, self.encoder.dim), np.float32)
        new.train(np.vstack([old, sample]) if old.size else sample)
        for start in range(0, len(ids), 65_536):
            new.add(old[start : start + 65_536], ids[start : start + 65_536])
        self.vectors = new
        self.manifest["factory"] = new.factory

    def _sparse_groups(self) -> np.ndarray:
        """Each row's sparse group: its principal charge's :func:`group_key`."""
        charges = np.asarray(self.meta["charge"])
        names = self.vocab["charges"]
        keys = np.array([group_key(names.name(i)) for i in range(int(charges.max(initial=-1)) + 1)] + [NO_GROUP],
                        dtype=np.int64)
        return keys[np.where(charges >= 0, charges, len(keys) - 1)]

    def _columns(self, batch: list[_Row]) -> dict[str, np.ndarray]:
        v = self.vocab
        return {
            "charge": [v["charges"].add(r.profile.charge) for r in batch],
            "family": [v["families"].add(charge_family(r.profile.charge) if r.profile.charge else None) for r in batch],
            "province": [v["provinces"].add(r.profile.province) for r in batch],
            "tier": [v["tiers"].add(r.profile.tier) for r in batch],
            "court": [v["courts"].add(r.profile.court) for r in batch],
            "date": [_days(r.profile.date) for r in batch],
            "term": [r.sentence.term_months for r in batch],
            "form": [FORMS.index(r.sentence.form) for r in batch],
            "circumstances": [circumstance_mask(r.profile.circumstances) for r in batch],
            "role": [ROLES.index(r.profile.role) for r in batch],
            "amount": [np.nan if r.profile.amount_yuan is None else r.profile.amount_yuan for r in batch],
            "synthetic": [r.synthetic for r in batch],
            "deleted": [False] * len(batch),
        }

    # ----------------------------------------------------------------------------- persistence

    def save(self) -> None:
        """Write a new generation and switch the manifest to it; the old generation goes after."""
        self.meta.flush()
        generation = int(self.manifest.get("generation", 0)) + 1
        gen_dir = self.directory / f"gen-{generation:06d}"
        if gen_dir.exists():
            shutil.rmtree(gen_dir)
        gen_dir.mkdir()
        self.vectors.save(gen_dir / "vectors.faiss")
        self.meta.save(gen_dir / "meta")
        offsets = self.rows.flush()
        np.save(gen_dir / "offsets.npy", offsets)
        self.case_ids.save(gen_dir / "case_ids.txt")
        write_json(gen_dir / "vocab.json", {name: v.values for name, v in self.vocab.items()})
        if self.sparse is not None:
            self.sparse.save(gen_dir)
        deleted = np.asarray(self.meta["deleted"])
        manifest = {
            **self.manifest,
            "generation": generation,
            "rows": len(self.meta),
            "live_rows": int(len(deleted) - np.count_nonzero(deleted)),
            "ntotal": self.vectors.ntotal,
            "factory": self.vectors.factory,
            "sparse": self.sparse is not None,
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        write_json(self.directory / "manifest.json", manifest)
        self.manifest = manifest
        self.rows = _RowStore(self.rows.path, offsets)
        for old in self.directory.glob("gen-*"):
            if old != gen_dir:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, index_dir: Path, *, settings: Settings | None = None, mmap: bool = True) -> RetrievalIndex:
        """Open a bundle; a missing, incomplete or inconsistent one raises IndexFormatError naming the part."""
        settings = settings or load_settings()
        index_dir = Path(index_dir)
        if not index_dir.is_dir():
            raise IndexFormatError(f"retrieval index directory {index_dir} does not exist (build it first)")
        manifest_path = index_dir / "manifest.json"
        if not manifest_path.is_file():
            raise IndexFormatError(f"{index_dir} is not a retrieval index: manifest.json is missing")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise IndexFormatError(f"{manifest_path}: not valid JSON ({e})") from e
        for key in ("format_version", "generation", "rows", "ntotal", "factory", "dim", "encoder_fingerprint"):
            if key not in manifest:
                raise IndexFormatError(f"{manifest_path}: field {key!r} is missing")
        if manifest["format_version"] != FORMAT_VERSION:
            raise IndexFormatError(
                f"{manifest_path}: format_version {manifest['format_version']} (this code reads {FORMAT_VERSION})"
            )
        gen_dir = index_dir / f"gen-{int(manifest['generation']):06d}"
        if not gen_dir.is_dir():
            raise IndexFormatError(f"{gen_dir} (the manifest's generation) is missing")
        try:
            encoder = load_encoder(index_dir / "encoder")
        except Exception as e:
            raise IndexFormatError(f"{index_dir / 'encoder'}: {e}") from e
        if encoder.fingerprint != manifest["encoder_fingerprint"] or encoder.dim != manifest["dim"]:
            raise IndexFormatError(f"{index_dir}: the encoder does not match the one the index was built with")
        vectors = VectorIndex.load(gen_dir / "vectors.faiss", manifest["factory"], mmap=mmap,
                                   refine_reads=settings.retrieval_refine_reads)
        meta = Metadata.load(gen_dir / "meta", mmap=mmap)
        offsets = _load_npy(gen_dir / "offsets.npy")
        if not (gen_dir / "case_ids.txt").is_file():
            raise IndexFormatError(f"{gen_dir / 'case_ids.txt'} is missing")
        case_ids = CaseIds.load(gen_dir / "case_ids.txt")
        vocab_path = gen_dir / "vocab.json"
        if not vocab_path.is_file():
            raise IndexFormatError(f"{vocab_path} is missing")
        vocab_lists = json.loads(vocab_path.read_text(encoding="utf-8"))
        vocab = {name: Vocab(vocab_lists.get(name, [])) for name in VOCAB_NAMES}
        rows = int(manifest["rows"])
        for what, n in (("metadata", len(meta)), ("offsets", len(offsets)), ("case ids", len(case_ids))):
            if n != rows:
                raise IndexFormatError(f"{gen_dir}: {what} has {n} rows, the manifest says {rows}")
        if vectors.ntotal != manifest["ntotal"] or vectors.dim != encoder.dim:
            raise IndexFormatError(
                f"{gen_dir}: FAISS index holds {vectors.ntotal}×{vectors.dim}, "
                f"the manifest says {manifest['ntotal']}×{manifest['dim']}"
            )
        rows_path = index_dir / "rows.jsonl"
        if not rows_path.is_file():
            raise IndexFormatError(f"{rows_path} is missing")
        sparse = SparseIndex.load(gen_dir) if manifest.get("sparse") else None
        if sparse is not None and len(sparse) != rows:
            raise IndexFormatError(f"{gen_dir}: sparse tokens have {len(sparse)} rows, the manifest says {rows}")
        return cls(index_dir, encoder, vectors, meta, vocab, _RowStore(rows_path, offsets), case_ids, sparse,
                   manifest, settings)

    # ----------------------------------------------------------------------------- updates

    def add(self, cases: Iterable[Case]) -> int:
        """Index new cases without a rebuild; a case already indexed is replaced. Returns rows added.

        Everything is computed before anything changes, so a failure leaves the index as it was.
        The index type stays as built (an exact index outgrowing ``retrieval_exact_max`` switches
        to the large factory at the next build). Call :meth:`save` to persist.
        """
        batch = [row for case in cases for row in _rows_of(case)]
        if not batch:
            return 0
        vecs = self.encoder.encode([r.doc for r in batch])
        tokens = [tokenize(r.doc) for r in batch] if self.sparse is not None else None
        new_sparse = (
            self.sparse.extend(tokens, [group_key(r.profile.charge) for r in batch])
            if self.sparse is not None and tokens is not None
            and len(self.sparse) + len(batch) <= self.settings.retrieval_sparse_max_rows
            else None
        )
        self.delete({r.case_id for r in batch})
        self.meta.make_writable()
        self._ingest(batch, None, migrate=False, vecs=vecs)
        if self.sparse is not None and new_sparse is None:
            self.manifest["sparse_note"] = "sparse side dropped: the index outgrew LIANGXING_RETRIEVAL_SPARSE_MAX_ROWS"
        self.sparse = new_sparse
        return len(batch)

    def delete(self, case_ids: Iterable[str]) -> int:
        """Remove every row of these cases (tombstone, and from FAISS where it can). Returns rows removed."""
        rows = [i for cid in case_ids for i in self._by_case.get(cid)]
        deleted = np.asarray(self.meta["deleted"])
        rows = [i for i in rows if not deleted[i]]
        if not rows:
            return 0
        self._generation += 1
        self.meta.make_writable()
        self.meta.columns["deleted"][rows] = True
        self.vectors.remove(np.asarray(rows, dtype=np.int64))
        return len(rows)

    # ----------------------------------------------------------------------------- queries

    def _query(
        self, case: Case, defendant: Defendant, guideline: GuidelineResult | None = None
    ) -> tuple[Case, Defendant, DefendantProfile]:
        if not isinstance(case, Case) or not isinstance(defendant, Defendant):
            raise RetrievalQueryError("search needs a Case and one of its Defendants")
        query_case = case.before_judgment()
        names = [d.name for d in case.defendants]
        if defendant in case.defendants:
            query_defendant = query_case.defendants[case.defendants.index(defendant)]
        elif defendant.name in names:
            query_defendant = query_case.defendants[names.index(defendant.name)]
        else:
            query_defendant = defendant.model_copy(
                update={"sentence": None, "sentence_evidence": None, "charge_sentences": []}
            )
        return query_case, query_defendant, profile_of(query_case, query_defendant, guideline)

    def profile(self, case: Case, defendant: Defendant, guideline: GuidelineResult | None = None) -> DefendantProfile:
        """The before-judgment profile that filters and cohorts use for this defendant."""
        return self._query(case, defendant, guideline)[2]

    def allowed(
        self,
        profile: DefendantProfile,
        *,
        province_scope: ProvinceScope = "other",
        same_charge: bool = True,
        same_tier: bool = False,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
    ) -> np.ndarray:
        """The boolean row mask a search with these filters ranks within (live rows only)."""
        return self._filter(profile, RowSelection(province_scope, same_charge, same_tier, date_from, date_to))

    def _of_rows(self, slot: str, build: Callable[[], Any]) -> Any:
        """A value derived from the current rows, kept in ``slot`` with the generation it was built
        for, and rebuilt lazily (once, under the lock) after rows change."""
        current = getattr(self, slot)
        if current is not None and current[0] == self._generation:
            return current[1]
        with self._order_lock:
            generation = self._generation
            current = getattr(self, slot)
            if current is None or current[0] != generation:
                current = (generation, build())
                setattr(self, slot, current)
            return current[1]

    def _charge_order(self) -> ChargeOrder:
        """The rows grouped by charge, for the current rows."""
        return self._of_rows("_order", lambda: ChargeOrder(self.meta))

    def _scope_province(self, profile: DefendantProfile, scope: str) -> int | None:
        """The province id a scope compares with (None for ``any``); raises for a scope it cannot apply."""
        if scope not in ("other", "own", "any"):
            raise RetrievalQueryError(f"province_scope must be 'other', 'own' or 'any', not {scope!r}")
        if scope == "any":
            return None
        if profile.province is None:
            raise RetrievalQueryError(
                f"province_scope={scope!r} needs the case's province (case.province or case.court.province), "
                "which is unknown; pass province_scope='any'"
            )
        return self.vocab["provinces"].get(profile.province)

    def _checked_scope(self, profile: DefendantProfile, selection: RowSelection) -> int | None:
        """The province id of the scope (``_scope_province``), once the selection is checked for this profile."""
        pid = self._scope_province(profile, selection.scope)
        if selection.same_charge and profile.charge is None:
            raise RetrievalQueryError("same_charge=True needs the defendant's charges, which are empty")
        if selection.same_tier and profile.tier is None:
            raise RetrievalQueryError("same_tier=True needs the statutory tier, which the guideline cannot place")
        date_from, date_to = selection.date_from, selection.date_to
        if date_from is not None and date_to is not None and date_from > date_to:
            raise RetrievalQueryError(f"date_from {date_from} is after date_to {date_to}")
        return pid

    def _filter_bases(self) -> FilterBases:
        """The bitmaps of :class:`FilterBases` for the current rows."""
        return self._of_rows("_bases", lambda: FilterBases(self._charge_order(), self.meta))

    def _filter(self, profile: DefendantProfile, selection: RowSelection) -> np.ndarray:
        """The boolean mask of the selected live rows, compared column by column."""
        pid = self._checked_scope(profile, selection)
        # With the charge filter only the charge's rows are compared: its slice of the charge-grouped
        # columns (1/20 of the rows at a million), rather than every row of every column.
        order = self._charge_order() if selection.same_charge else None
        columns: Metadata | dict[str, np.ndarray] = self.meta
        if order is not None:
            span, columns = order.charge_columns(self.vocab["charges"].get(profile.charge))
        keep = live_in_scope(columns, selection.scope, pid)
        date_from, date_to = selection.date_from, selection.date_to
        if selection.same_tier:
            keep &= np.asarray(columns["tier"]) == self.vocab["tiers"].get(profile.tier)
        if date_from is not None or date_to is not None:
            days = np.asarray(columns["date"])
            keep &= days != DATE_UNKNOWN
            if date_from is not None:
                keep &= days >= _days(date_from)
            if date_to is not None:
                keep &= days <= _days(date_to)
        if order is None:
            return keep
        mask = np.zeros(order.n_rows, dtype=bool)
        mask[order.rows[span][keep]] = True
        return mask

    def _row_filter(self, profile: DefendantProfile, selection: RowSelection) -> RowFilter:
        """:meth:`_filter` as a :class:`RowFilter`, cached: searches repeat a few hundred filters.
        A filter by charge and province scope (nearly every search) is composed from
        :class:`FilterBases` in a tenth of a millisecond, so the cache can be small; one by tier or
        dates is computed from the columns (1–3 ms at a million rows)."""
        province = self.vocab["provinces"].get(profile.province) if profile.province is not None else None
        key = (
            self._generation, selection, province if selection.scope != "any" else None,
            self.vocab["charges"].get(profile.charge) if selection.same_charge and profile.charge is not None else None,
            self.vocab["tiers"].get(profile.tier) if selection.same_tier and profile.tier is not None else None,
        )
        cached = self._filters.get(key)
        if cached is None:
            if selection.by_columns:
                cached = RowFilter(self._filter(profile, selection))
            else:
                pid = self._checked_scope(profile, selection)
                charge = self.vocab["charges"].get(profile.charge) if selection.same_charge else None
                cached = self._filter_bases().compose(charge, selection.scope, pid)
            if len(self._filters) >= self._filter_slots():
                self._filters.pop(next(iter(self._filters)), None)
            self._filters[key] = cached
        return cached

    def _filter_slots(self) -> int:
        """Filters kept within ``retrieval_filter_cache_mb``: a packed bitmap is 1 bit per row (160 KB at
        1.3M rows)."""
        bitmap_bytes = max(1, -(-len(self.meta) // 8))
        return max(16, self.settings.retrieval_filter_cache_mb * 2**20 // bitmap_bytes)

    def search(
        self,
        case: Case,
        defendant: Defendant,
        *,
        k: int = 10,
        province_scope: ProvinceScope = "other",
        same_charge: bool = True,
        same_tier: bool = False,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        mode: Mode = "hybrid",
        guideline: GuidelineResult | None = None,
    ) -> list[SimilarCase]:
        """The k most similar past sentenced defendants, spread across provinces and courts.

        ``guideline``: the guideline engine's result for this defendant when the caller has it
        (it places the statutory tier; passing it saves computing it again).
        """
        return self.search_many(
            case, [defendant], k=k, province_scope=province_scope, same_charge=same_charge, same_tier=same_tier,
            date_from=date_from, date_to=date_to, mode=mode, guidelines=[guideline],
        )[0]

    def search_many(
        self,
        case: Case,
        defendants: Sequence[Defendant],
        *,
        k: int = 10,
        province_scope: ProvinceScope = "other",
        same_charge: bool = True,
        same_tier: bool = False,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        mode: Mode = "hybrid",
        guidelines: Sequence[GuidelineResult | None] | None = None,
    ) -> list[list[SimilarCase]]:
        """:meth:`search` for several defendants of one case, each answered as alone.

        Co-defendants nearly always share the filter (charge, province): the dense side then
        searches them in one FAISS call, which probes the lists and scans the codes for all of
        them at once (three defendants: about 0.85 ms against 1.1 ms one by one at 1.3M rows).
        """
        if not 1 <= k <= 100:
            raise RetrievalQueryError(f"k must be between 1 and 100, not {k}")
        if mode not in ("hybrid", "dense", "sparse"):
            raise RetrievalQueryError(f"mode must be 'hybrid', 'dense' or 'sparse', not {mode!r}")
        if mode == "sparse" and self.sparse is None:
            note = self.manifest.get("sparse_note", "no sparse side in this index")
            raise RetrievalQueryError(f"mode='sparse': {note}")
        guidelines = guidelines_for(defendants, guidelines)
        selection = RowSelection(province_scope, same_charge, same_tier, date_from, date_to)
        queries = []
        for defendant, guideline in zip(defendants, guidelines, strict=True):
            query_case, query_defendant, profile = self._query(case, defendant, guideline)
            allowed = self._row_filter(profile, selection)
            doc = case_document(query_case, query_defendant) if allowed.n_allowed else ""
            queries.append((profile, allowed, doc))
        dense: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if mode in ("hybrid", "dense"):
            by_filter: dict[int, list[int]] = {}
            for i, (_profile, allowed, _doc) in enumerate(queries):
                if allowed.n_allowed:
                    by_filter.setdefault(id(allowed), []).append(i)
            for group in by_filter.values():
                allowed = queries[group[0]][1]
                vectors = np.vstack([self.encoder.encode([queries[i][2]]) for i in group])
                found = self.vectors.search_batch(vectors, self._wanted(allowed, k), allowed, self.knobs)
                dense.update(zip(group, found, strict=True))
        own_rows = self._by_case.get(case.id)  # the case is not its own precedent
        out: list[list[SimilarCase]] = []
        for q, (profile, allowed, doc) in enumerate(queries):
            if not allowed.n_allowed:
                out.append([])
                continue
            dense_rows, sparse_rows = np.empty(0, np.int64), np.empty(0, np.int64)
            if q in dense:
                sims, dense_rows = dense[q]
                if mode == "dense":
                    ranked, scores = _by_score(dense_rows, sims)
            if mode in ("hybrid", "sparse") and self.sparse is not None:
                group = group_key(profile.charge) if selection.same_charge else None
                sparse_scores, sparse_rows = self.sparse.search(tokenize_query(doc), self._wanted(allowed, k),
                                                                allowed.mask, group)
                if mode == "sparse":
                    ranked, scores = _by_score(sparse_rows, sparse_scores)
            if mode == "hybrid":
                ranked, scores = fuse(dense_rows, sparse_rows, dense_weight=self.settings.retrieval_dense_weight)
            chosen = self._spread_positions(ranked, k, exclude_rows=own_rows)
            rows = ranked[chosen]
            # a ranking fused from one side alone is that side's ranking itself (retrieval.fusion)
            dense_pos = [i + 1 for i in chosen] if ranked is dense_rows else _positions(dense_rows, rows)
            sparse_pos = [i + 1 for i in chosen] if ranked is sparse_rows else _positions(sparse_rows, rows)
            out.append(self._hits(rows, scores[chosen].tolist(), profile, dense_pos, sparse_pos))
        return out

    @staticmethod
    def _wanted(allowed: RowFilter, k: int) -> int:
        """Candidates ranked before the spread picks k (OVERSAMPLE)."""
        return min(allowed.n_allowed, max(OVERSAMPLE * k, 100))

    def spread(self, ranked: list[int], k: int) -> list[int]:
        """Best first, at most N per province and M per court; topped up in rank order if too few."""
        ranked_rows = np.asarray(ranked, dtype=np.int64)
        return ranked_rows[self._spread_positions(ranked_rows, k)].tolist()

    def _spread_positions(self, ranked: np.ndarray, k: int, exclude_rows: Iterable[int] = ()) -> list[int]:
        """:meth:`spread` as positions into ``ranked`` (ascending: the chosen rows best first), passing
        over ``exclude_rows``.

        Rows are read in chunks as the caps need them: right after a FAISS scan every row read
        is a cache and TLB miss, and ten results rarely need more than the first few dozen rows.
        """
        provinces_column = np.asarray(self.meta["province"])
        courts_column = np.asarray(self.meta["court"])
        max_province = self.settings.retrieval_max_per_province
        max_court = self.settings.retrieval_max_per_court
        per_province: Counter[int] = Counter()
        per_court: Counter[int] = Counter()
        chosen: list[int] = []
        excluded: set[int] = set()
        exclude = frozenset(exclude_rows)
        step = max(4 * k, 32)
        for start in range(0, len(ranked), step):
            part = ranked[start : start + step]
            for i, r, p, c in zip(range(start, start + len(part)), part.tolist(),
                                  provinces_column[part].tolist(), courts_column[part].tolist(), strict=True):
                if r in exclude:
                    excluded.add(i)
                    continue
                if p >= 0 and per_province[p] >= max_province:
                    continue
                if c >= 0 and per_court[c] >= max_court:
                    continue
                chosen.append(i)
                per_province[p] += 1
                per_court[c] += 1
                if len(chosen) == k:
                    return chosen
        taken = set(chosen) | excluded
        chosen += [i for i in range(len(ranked)) if i not in taken][: k - len(chosen)]
        return sorted(chosen)

    def _hits(
        self,
        rows: np.ndarray,
        scores: list[float],
        query: DefendantProfile,
        dense_ranks: list[int | None],
        sparse_ranks: list[int | None],
    ) -> list[SimilarCase]:
        """The hits of these rows: their metadata columns read once for all, display rows decoded."""
        meta = self.meta
        columns = zip(
            rows.tolist(),
            np.asarray(meta["province"])[rows].tolist(),
            np.asarray(meta["tier"])[rows].tolist(),
            np.asarray(meta["role"])[rows].tolist(),
            np.asarray(meta["circumstances"])[rows].tolist(),
            np.asarray(meta["amount"])[rows].tolist(),
            scores,
            dense_ranks,
            sparse_ranks,
            strict=True,
        )
        provinces, tiers = self.vocab["provinces"], self.vocab["tiers"]
        query_bits = circumstance_mask(query.circumstances)
        hits: list[SimilarCase] = []
        for row, province_id, tier_id, role_id, circumstance_bits, amount, score, dense_rank, sparse_rank in columns:
            display = _Display.model_validate_json(self.rows.raw(row))
            sentence = _sentence(display.sentence)
            province = provinces.name(province_id)
            tier = tiers.name(tier_id)
            role = ROLES[role_id]
            # every value below is already of its field's type (the display validated as it was
            # decoded, the rest computed here), so the hit is built without validating it again
            hits.append(trusted(SimilarCase, {
                "case_id": display.case_id,
                "court": display.court,
                "province": province,
                "province_name": BY_CODE[province].name if province in BY_CODE else None,
                "date": dt.date.fromisoformat(display.date) if display.date else None,
                "charges": display.charges,
                "defendant": display.defendant,
                "sentence": sentence,
                "sentence_text": display.sentence_text or format_sentence(sentence),
                "score": float(score),
                "dense_rank": dense_rank,
                "sparse_rank": sparse_rank,
                "matched": _reasons(query, query_bits, display.charges, tier, role, circumstance_bits, amount,
                                    province),
                "tier": tier,
                "role": role.label,
                "circumstances": list(_circumstance_labels(circumstance_bits)),
                "synthetic": display.synthetic,
            }, _SIMILAR_FIELDS))
        return hits

    def cohort(
        self,
        case: Case,
        defendant: Defendant,
        *,
        province_scope: ProvinceScope = "any",
        guideline: GuidelineResult | None = None,
    ) -> CohortStats:
        """Statistics of the comparable cohort (charge, tier, key circumstances), by province."""
        profile = self.profile(case, defendant, guideline)
        query = self.cohort_query(case, profile, province_scope)
        return cohort_stats([query] if query else [], profile, scope=province_scope,
                            min_n=self.settings.cohort_min_n)

    def cohort_query(self, case: Case, profile: DefendantProfile, province_scope: ProvinceScope) -> CohortQuery | None:
        """This index's part of a cohort (a shard's, for ShardedIndex.cohort); None for a defendant
        without a charge. An unknown or inapplicable scope is refused."""
        pid = self._scope_province(profile, province_scope)
        if profile.charge is None:
            return None
        return CohortQuery(
            self._charge_order(), self.vocab, profile, scope=province_scope, province_id=pid,
            exclude_rows=self._by_case.get(case.id),  # the case is not its own precedent
        )

    def indexed(self, case_id: str) -> bool:
        """Whether rows of this case are in the index (its own rows then stay out of its results)."""
        return bool(self._by_case.get(case_id))

    def __len__(self) -> int:
        """Live (not deleted) rows: indexed sentenced defendants."""
        return int(len(self.meta) - np.count_nonzero(np.asarray(self.meta["deleted"])))

    def info(self) -> dict[str, Any]:
        vectors = self.vectors
        reads = None if vectors.refine is None else "read" if vectors.refine_codes is not None else "map"
        return {**self.manifest, "directory": str(self.directory), "mmapped": vectors.mmapped,
                "refine_reads": reads}  # None: no refinement codes to read


def _by_score(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows best first (ties by row number) and their scores as float64."""
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order].astype(np.float64)


def _positions(ranking: np.ndarray, rows: np.ndarray) -> list[int | None]:
    """1-based rank of each of ``rows`` in ``ranking``, None where absent."""
    if len(ranking) == 0:
        return [None] * len(rows)
    ranks = dict(zip(ranking.tolist(), range(1, len(ranking) + 1), strict=True))
    return [ranks.get(r) for r in rows.tolist()]


@functools.lru_cache(maxsize=4096)
def _circumstance_labels(bits: int) -> tuple[str, ...]:
    """Labels of the circumstances of a bit mask (retrieval.profile.CIRCUMSTANCE_BITS), in
    CircumstanceCode order: ints, unlike frozensets of enum members, hash without Python calls."""
    return tuple(code.label for code, bit in CIRCUMSTANCE_BITS.items() if bits & bit)


def _reasons(
    query: DefendantProfile,
    query_bits: int,
    charges: list[str],
    tier: str | None,
    role: Role,
    circumstance_bits: int,
    amount: float,
    province: str | None,
) -> list[str]:
    """Why a hit is similar to the query (``*_bits``: circumstance bit masks)."""
    reasons: list[str] = []
    shared_charges = [c for c in query.charges if c in charges]
    if shared_charges:
        reasons.append("同一罪名：" + "、".join(shared_charges))
    if tier is not None and tier == query.tier:
        reasons.append(f"同一法定刑幅度：{tier}")
    if role == query.role and role is not Role.SOLE:
        reasons.append(f"同为{role.label}")
    shared = _circumstance_labels(circumstance_bits & query_bits)
    if shared:
        reasons.append("共同情节：" + "、".join(shared))
    if query.amount_yuan and not math.isnan(amount) and amount > 0:
        ratio = amount / query.amount_yuan
        closeness = "相近" if 0.5 <= ratio <= 2 else ("较高" if ratio > 2 else "较低")
        reasons.append(f"涉案数额{closeness}：{amount:,.0f}元，为本案的{ratio:.2f}倍")
    if province is not None and province == query.province:
        reasons.append("同省案件")
    return reasons


def guidelines_for(
    defendants: Sequence[Defendant], guidelines: Sequence[GuidelineResult | None] | None
) -> list[GuidelineResult | None]:
    """One guideline result (or None: computed when needed) per defendant of a ``search_many``."""
    if guidelines is None:
        return [None] * len(defendants)
    if len(guidelines) != len(defendants):
        raise ValueError(f"{len(guidelines)} guideline results for {len(defendants)} defendants")
    return list(guidelines)


def _chain(head: list[_Row], rest: Iterator[_Row]) -> Iterator[_Row]:
    yield from head
    yield from rest


def train_corpus_encoder(cases: Iterable[Case], out_dir: Path, settings: Settings | None = None) -> dict[str, Any]:
    """Train the static encoder on the sentenced defendants of ``cases`` (up to retrieval_train_max)."""
    settings = settings or load_settings()
    head: list[_Row] = []
    for row in (row for case in cases for row in _rows_of(case)):
        head.append(row)
        if len(head) >= settings.retrieval_train_max:
            break
    if not head:
        raise ValueError("no sentenced defendant among the cases: nothing to train the encoder on")
    return _train_on_rows(head, Path(out_dir), settings)


def _prepare_encoder(head: list[_Row], target: Path, encoder_dir: Path | None, settings: Settings) -> dict[str, Any]:
    """Copy the given encoder into the bundle, or train the static one on the head of the corpus."""
    if encoder_dir is not None:
        encoder_dir = Path(encoder_dir)
        load_encoder(encoder_dir)  # fail early, with the directory named, before copying
        shutil.copytree(encoder_dir, target)
        return {"kind": "given", "source": str(encoder_dir)}
    return _train_on_rows(head, target, settings)


def _train_on_rows(head: list[_Row], target: Path, settings: Settings) -> dict[str, Any]:
    items = [
        PairItem(
            text=r.doc,
            charge=r.profile.charge,
            tier=r.profile.tier,
            circumstances=circumstance_mask(r.profile.circumstances),
            term_months=r.sentence.term_months,
            form=r.sentence.form,
        )
        for r in head
    ]
    params = EncoderParams(
        dim=settings.retrieval_dim, epochs=settings.retrieval_epochs,
        seed=settings.demo_seed % 2**31
    )
    pairs = weak_pairs(items, max_pairs=params.max_pairs, seed=params.seed) if params.epochs > 0 else []
    return train_encoder([r.doc for r in head], pairs, target, params)


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise IndexFormatError(f"{path} is missing")
    try:
        return np.load(path)
    except ValueError as e:
        raise IndexFormatError(f"{path}: unreadable ({e})") from e


