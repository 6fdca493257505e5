"""Training rows kept between retrains (特征缓存), so a retrain featurises only the cases it has not seen.

At a million stored cases the feature extraction of a retrain (guideline calculation, feature
vector, facts text per defendant) costs about twenty minutes on one core, and a routine retrain adds
a few thousand cases. The cache keeps :class:`~training.dataset.Dataset` rows as Parquet segments,
one per run that computed rows, each row tagged with its case's store sequence number; each
segment lists the cases it covers with their content hashes. A cached case is used only while the
store holds it under the same sequence number and content hash: the store gives an edited case a
new sequence number, and a deleted one has none, so neither can be served stale.

The cache is keyed by the feature spec (its version, the rule-set version and the charge
vocabulary) and by :data:`ROW_FORMAT`: rows computed under another spec sit in another folder
and are never mixed in. The assembled dataset equals what :func:`training.dataset.build_dataset`
gives on the same cases in store order (a test holds every field equal).

Writers go to a temporary name and rename into place, the case list last: a run killed while
writing leaves no segment that a later run would read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.extract import FeatureExtractor
from features.spec import FeatureSpec
from sentencing.case import Case
from training.dataset import Dataset, build_dataset

ROW_FORMAT = "3"
# 2: a CAIL or LawBench label of 0 months is the form non_custodial, no longer the unknown "term"
# 3: rows say whether the defendant is a unit (被告单位)
"""Bump when what a row holds or how it is computed changes outside the feature spec."""

_CHUNK = 5_000
"""Cases featurised per :func:`build_dataset` call while filling the cache."""

_PROGRESS_EVERY = 50_000
"""Cases featurised between two progress messages."""

_READ_BATCH = 65_536
"""Rows read back per Parquet batch."""

_NUMBER_FIELDS = {"term_months": np.int64, "n_defendants": np.int64, "position": np.int64, "unit": np.bool_,
                  "g_low": np.float64, "g_point": np.float64, "g_high": np.float64, "g_cail": np.float64}
_STRING_FIELDS = ("forms", "case_ids", "names", "charges", "families", "provinces", "sources", "texts")


@dataclass(frozen=True)
class CacheUse:
    """What one :meth:`FeatureCache.dataset` call took from the cache and what it computed."""

    cached_cases: int
    computed_cases: int
    segments: int


class FeatureCache:
    """Dataset rows of stored cases under one feature spec, in ``folder / <key>``."""

    def __init__(self, folder: Path, spec: FeatureSpec, *, max_segments: int = 8) -> None:
        key = hashlib.sha256((ROW_FORMAT + spec.model_dump_json()).encode()).hexdigest()[:16]
        self.root = Path(folder)
        self.folder = self.root / f"spec-{key}"
        self.spec = spec
        self.max_segments = max_segments

    def dataset(
        self,
        wanted: Sequence[tuple[int, str]],
        fetch: Callable[[Sequence[int]], Iterator[tuple[int, Case]]],
        extractor: FeatureExtractor,
        progress: Callable[[str], None] = lambda msg: None,
        *,
        texts: bool = True,
    ) -> tuple[Dataset, CacheUse]:
        """The training dataset of the cases ``wanted`` ((seq, content hash), in store order).

        ``texts=False`` leaves the facts' texts out (``Dataset.texts_loaded`` False): only the
        optional text model reads them, and at a million rows they take 1.4 GiB.

        Cases the cache holds under the same seq and hash are read back; the rest are fetched
        (``fetch(seqs)`` yields (seq, case) in seq order), featurised and written as a new segment.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self._drop_foreign_specs()
        for left in self.folder.glob(".tmp-*"):  # a killed run's half-written file (runs do not overlap: see
            left.unlink(missing_ok=True)         # ModelRegistry.sweep)
        segments = self._segments()
        known = self._known(segments)
        missing = [(seq, digest) for seq, digest in wanted if known.get(seq, (None, None))[0] != digest]
        if missing:
            progress(f"featurising {len(missing)} cases not in the feature cache ({len(wanted) - len(missing)} cached)")
            segments.append(self._compute(missing, fetch, extractor, progress))
            known.update((seq, (digest, len(segments) - 1)) for seq, digest in missing)  # what _known would read
        taken = _taken(wanted, known, len(segments))
        ds = self._assemble(taken, wanted, segments, texts)
        if len(segments) > self.max_segments:
            self._compact(taken, wanted, segments)
            segments = self._segments()
        return ds, CacheUse(cached_cases=len(wanted) - len(missing), computed_cases=len(missing),
                            segments=len(segments))

    # segments -----------------------------------------------------------------------------------

    def _segments(self) -> list[Path]:
        """Complete segments (their case list written), oldest first."""
        done = sorted(self.folder.glob("seg-*.cases.parquet"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.with_name(p.name.replace(".cases.parquet", "")) for p in done
                if p.with_name(p.name.replace(".cases.", ".rows.")).exists()]

    @staticmethod
    def _known(segments: list[Path]) -> dict[int, tuple[str, int]]:
        """seq → (content hash, segment number); the newest segment wins when two hold a case (a case
        featurised again because the one cached under its number had another hash)."""
        known: dict[int, tuple[str, int]] = {}
        for number, seg in enumerate(segments):
            table = pq.read_table(_cases_path(seg), columns=["seq", "content_hash"])
            for seq, digest in zip(table.column("seq").to_pylist(), table.column("content_hash").to_pylist(),
                                   strict=True):
                known[seq] = (digest, number)
        return known

    def _compute(self, missing: Sequence[tuple[int, str]], fetch: Callable[[Sequence[int]], Iterator[tuple[int, Case]]],
                 extractor: FeatureExtractor, progress: Callable[[str], None]) -> Path:
        """Featurise the ``missing`` cases ((seq, the store's content hash)) into a new segment."""
        seqs = [seq for seq, _ in missing]
        digests = dict(missing)
        seg = self.folder / f"seg-{seqs[0]}-{seqs[-1]}-{uuid.uuid4().hex[:8]}"
        writer: pq.ParquetWriter | None = None
        tmp_rows = _tmp(_rows_path(seg))
        case_seqs: list[int] = []
        case_hashes: list[str] = []
        case_rows: list[int] = []
        try:
            chunk: list[tuple[int, Case]] = []
            for item in fetch(seqs):
                chunk.append(item)
                if len(chunk) == _CHUNK:
                    writer = self._write_chunk(chunk, digests, extractor, writer, tmp_rows, case_seqs, case_hashes,
                                               case_rows)
                    chunk = []
                    if len(case_seqs) % _PROGRESS_EVERY == 0:
                        progress(f"featurised {len(case_seqs)} of {len(seqs)} cases")
            if chunk or writer is None:
                writer = self._write_chunk(chunk, digests, extractor, writer, tmp_rows, case_seqs, case_hashes,
                                           case_rows)
        finally:
            if writer is not None:
                writer.close()
        if case_seqs != list(seqs):
            tmp_rows.unlink(missing_ok=True)
            raise RuntimeError(f"the store gave {len(case_seqs)} of the {len(seqs)} cases asked for: "
                               "was it changed during the retrain?")
        os.replace(tmp_rows, _rows_path(seg))
        cases = pa.table({"seq": pa.array(case_seqs, pa.int64()), "content_hash": pa.array(case_hashes, pa.string()),
                          "rows": pa.array(case_rows, pa.int32())})
        _write_atomic(cases, _cases_path(seg))
        return seg

    def _write_chunk(self, chunk: list[tuple[int, Case]], digests: dict[int, str], extractor: FeatureExtractor,
                     writer: pq.ParquetWriter | None, path: Path, case_seqs: list[int], case_hashes: list[str],
                     case_rows: list[int]) -> pq.ParquetWriter:
        ds = build_dataset((case for _, case in chunk), extractor, hash_cases=False)  # the store's hashes serve
        seq_of = {case.id: seq for seq, case in chunk}  # case ids are unique in a store
        rows_of = Counter(ds.case_ids)  # build_dataset decides which defendants make rows
        for seq, case in chunk:
            case_seqs.append(seq)
            case_hashes.append(digests[seq])  # the store's hash, which later runs compare with
            case_rows.append(rows_of[case.id])
        row_seqs = np.asarray([seq_of[case_id] for case_id in ds.case_ids], dtype=np.int64)
        table = _to_table(ds, row_seqs, self.spec.n_features)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
        return writer

    def _assemble(self, taken: list[np.ndarray], wanted: Sequence[tuple[int, str]], segments: list[Path],
                  texts: bool = True) -> Dataset:
        """The wanted cases' rows in store order.

        Two passes, so no whole segment is ever in memory (at a million rows a segment read at once
        takes several times the 3 GB of its matrix): the seq and position columns first, to place
        every row kept; then the segments batch by batch, each row copied to its place.
        """
        want = dict(wanted)
        picks: list[tuple[Path, np.ndarray]] = []  # per segment: which of its rows are kept
        seq_parts, pos_parts = [], []
        for seg, take in zip(segments, taken, strict=True):
            if not len(take):
                continue
            keys = pq.read_table(_rows_path(seg), columns=["seq", "position"])
            seqs = keys.column("seq").to_numpy()
            keep = np.isin(seqs, take)
            picks.append((seg, keep))
            seq_parts.append(seqs[keep])
            pos_parts.append(keys.column("position").to_numpy()[keep])
        row_seqs = np.concatenate(seq_parts) if seq_parts else np.zeros(0, dtype=np.int64)
        positions = np.concatenate(pos_parts) if pos_parts else np.zeros(0, dtype=np.int64)
        order = np.lexsort((positions, row_seqs))
        destination = np.empty(len(order), dtype=np.int64)
        destination[order] = np.arange(len(order))  # kept row i (in reading order) goes to destination[i]

        n, width = len(order), self.spec.n_features
        out = _Columns(n, width, texts)
        at = 0
        for seg, keep in picks:
            start = 0
            for batch in pq.ParquetFile(_rows_path(seg)).iter_batches(batch_size=_READ_BATCH, columns=out.columns):
                kept = keep[start:start + batch.num_rows]
                start += batch.num_rows
                if not kept.any():
                    continue
                if not kept.all():
                    batch = batch.filter(pa.array(kept))
                out.put(destination[at:at + batch.num_rows], batch)
                at += batch.num_rows
        row_seqs = row_seqs[order]
        hasher = hashlib.sha256()  # as build_dataset: the content hashes of the cases with rows, in order
        for seq in np.unique(row_seqs).tolist():
            hasher.update(want[seq].encode())
        return out.dataset(row_seqs, hasher.hexdigest())

    def _compact(self, taken: list[np.ndarray], wanted: Sequence[tuple[int, str]], segments: list[Path]) -> None:
        """Rewrite the rows of the wanted cases as one segment, batch by batch, and remove the others
        (with them the rows of cases gone from the store or held back)."""
        if not wanted:
            return
        seg = self.folder / f"seg-{wanted[0][0]}-{wanted[-1][0]}-{uuid.uuid4().hex[:8]}"
        tmp_rows = _tmp(_rows_path(seg))
        writer: pq.ParquetWriter | None = None
        rows_of: Counter[int] = Counter()
        try:
            for old, take in zip(segments, taken, strict=True):
                for batch in pq.ParquetFile(_rows_path(old)).iter_batches(batch_size=_READ_BATCH):
                    seqs = batch.column("seq").to_numpy()
                    keep = np.isin(seqs, take)
                    if not keep.any():
                        continue
                    part = batch if keep.all() else batch.filter(pa.array(keep))
                    if writer is None:
                        writer = pq.ParquetWriter(tmp_rows, part.schema, compression="zstd")
                    writer.write_batch(part)
                    rows_of.update(seqs[keep].tolist())
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            return  # nothing of the wanted cases is cached: nothing to rewrite
        os.replace(tmp_rows, _rows_path(seg))
        cases = pa.table({"seq": pa.array([seq for seq, _ in wanted], pa.int64()),
                          "content_hash": pa.array([digest for _, digest in wanted], pa.string()),
                          "rows": pa.array([rows_of.get(seq, 0) for seq, _ in wanted], pa.int32())})
        _write_atomic(cases, _cases_path(seg))
        for old in segments:
            _cases_path(old).unlink(missing_ok=True)  # the case list first: a half-removed segment is ignored
            _rows_path(old).unlink(missing_ok=True)

    def _drop_foreign_specs(self) -> None:
        """Rows of other feature specs can never be used again by this code: free their space."""
        for other in self.root.glob("spec-*"):
            if other != self.folder and other.is_dir():
                shutil.rmtree(other, ignore_errors=True)


def _to_table(ds: Dataset, row_seqs: np.ndarray, n_features: int) -> pa.Table:
    X = np.ascontiguousarray(ds.X, dtype=np.float64).reshape(-1)
    cols: dict[str, pa.Array] = {
        "seq": pa.array(row_seqs, pa.int64()),
        "position": pa.array(ds.positions, pa.int64()),
        "unit": pa.array(ds.units, pa.bool_()),
        "x": pa.FixedSizeListArray.from_arrays(pa.array(X, pa.float64()), n_features),
        "term_months": pa.array(ds.term_months, pa.int64()),
        "n_defendants": pa.array(ds.n_defendants, pa.int64()),
        "g_low": pa.array(ds.guideline[:, 0], pa.float64()),
        "g_point": pa.array(ds.guideline[:, 1], pa.float64()),
        "g_high": pa.array(ds.guideline[:, 2], pa.float64()),
        "g_cail": pa.array(ds.guideline_cail, pa.float64()),
        "g_custodial": pa.array(ds.guideline_custodial, pa.bool_()),
    }
    for name in _STRING_FIELDS:
        cols[name] = pa.array(getattr(ds, name), pa.string())
    return pa.table(cols)


class _Columns:
    """A dataset's columns filled row batch by row batch, each row at its place in store order."""

    def __init__(self, n: int, width: int, texts: bool = True) -> None:
        self.width = width
        self.texts = texts
        self.X = np.empty((n, width))
        self.numbers = {name: np.empty(n, dtype=dtype) for name, dtype in _NUMBER_FIELDS.items()}
        strings = _STRING_FIELDS if texts else tuple(f for f in _STRING_FIELDS if f != "texts")
        self.objects: dict[str, list[object]] = {name: [None] * n for name in (*strings, "g_custodial")}
        self.columns = ["x", *self.numbers, *self.objects]

    def put(self, rows: np.ndarray | slice, batch: pa.RecordBatch) -> None:
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and bool(np.all(np.diff(rows) == 1)):
            rows = slice(int(rows[0]), int(rows[-1]) + 1)  # the usual case, segments in store order: no scatter
        x = batch.column("x")
        self.X[rows] = x.flatten().to_numpy(zero_copy_only=False).reshape(-1, self.width)
        for name, column in self.numbers.items():
            column[rows] = batch.column(name).to_numpy(zero_copy_only=False)
        for name, values in self.objects.items():
            got = _shared_values(batch.column(name))
            if isinstance(rows, slice):
                values[rows] = got
            else:
                for row, value in zip(rows.tolist(), got, strict=True):
                    values[row] = value

    def dataset(self, row_seqs: np.ndarray, data_hash: str) -> Dataset:
        _, groups = np.unique(row_seqs, return_inverse=True)
        num, obj = self.numbers, self.objects
        return Dataset(
            X=self.X, term_months=num["term_months"], groups=groups.astype(np.int64),
            n_defendants=num["n_defendants"],
            guideline=np.column_stack([num["g_low"], num["g_point"], num["g_high"]]),
            guideline_cail=num["g_cail"], guideline_custodial=obj["g_custodial"],  # type: ignore[arg-type]
            positions=num["position"], units=num["unit"], data_hash=data_hash, texts_loaded=self.texts,
            **{name: obj.get(name, []) for name in _STRING_FIELDS},  # type: ignore[arg-type]
        )


def _taken(wanted: Sequence[tuple[int, str]], known: dict[int, tuple[str, int]], n_segments: int) -> list[np.ndarray]:
    """Per segment, the seqs of the wanted cases it serves: those ``known`` places in it under the
    content hash the store has now (one pass over the cache's cases, for reading back and compacting)."""
    want = dict(wanted)
    per_segment: list[list[int]] = [[] for _ in range(n_segments)]
    for seq, (digest, owner) in known.items():
        if want.get(seq) == digest:
            per_segment[owner].append(seq)
    return [np.asarray(seqs, dtype=np.int64) for seqs in per_segment]


def _shared_values(column: pa.Array) -> list[object]:
    """A column's values with one Python object per distinct value in the batch: a form, charge,
    province or source repeats over a million rows, and co-defendants share their case's text
    (70–90 bytes a row each as separate strings)."""
    if pa.types.is_boolean(column.type):
        return column.to_pylist()  # True, False and None are shared already
    encoded = pc.dictionary_encode(column)
    vocab = encoded.dictionary.to_pylist()
    return [vocab[i] if i is not None else None for i in encoded.indices.to_pylist()]


def _rows_path(seg: Path) -> Path:
    return seg.with_name(seg.name + ".rows.parquet")


def _cases_path(seg: Path) -> Path:
    return seg.with_name(seg.name + ".cases.parquet")


def _tmp(path: Path) -> Path:
    return path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")


def _write_atomic(table: pa.Table, path: Path) -> None:
    tmp = _tmp(path)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
