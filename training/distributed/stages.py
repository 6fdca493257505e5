"""The per-partition work of the distributed pipeline: pure functions a Dask worker runs.

Stages hand over through Parquet files (pyarrow), one file per partition, on storage every
worker sees:

1. **cases** — judgment lines (a byte range of an input file) or a sequence range of the case store
   → ``cases/part-NNNNN.parquet``: the canonical case JSON plus filter columns
   (id, seq, source, synthetic, province, primary charge, defendants, sentenced defendants);
2. **features** — a cases partition → ``features/part-NNNNN.parquet``: one row per sentenced
   defendant (``training.train.prepare``, the same extractor as local training), the label
   columns, and the case id as the group; held-back cases are left out here;
3. (training reads the feature files: :mod:`training.distributed.lgbm`);
4. **index shard** — cases partitions → one ``RetrievalIndex`` bundle built with the shared encoder.

Every writer goes to a temporary name and is renamed into place, so a killed task leaves no
half-written partition that a later stage could read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sentencing.case import Case

CASE_COLUMNS = ("id", "seq", "source", "synthetic", "province", "charge", "defendants", "sentenced", "case")
LABEL_COLUMNS = ("term_months", "form", "case_id", "charge", "source", "province")


def feature_column(i: int) -> str:
    return f"f{i:04d}"


@dataclass(frozen=True)
class InputPartition:
    """Lines ``first_line``… of ``path`` between two byte offsets (whole lines)."""

    fmt: str
    path: str
    start: int
    end: int
    first_line: int


@dataclass(frozen=True)
class StorePartition:
    """Cases of the store with ``after < seq ≤ upto``."""

    store: str
    after: int
    upto: int


@dataclass(frozen=True)
class HoldoutRule:
    """The retraining held-back slice (``training.retrain.held_back``), evaluated on the workers."""

    share: float
    real: bool
    """Held back from real cases when the store has any, else from synthetic ones."""

    def held(self, case: Case) -> bool:
        return self.holds(case.synthetic, case.id)

    def holds(self, synthetic: bool, case_id: str) -> bool:
        """The rule on a case's key columns (``CaseStore.keys``): a retrain picks its slice without
        decoding a case body."""
        from training.retrain import in_slice

        return (synthetic != self.real) and in_slice(case_id, self.share)


def plan_input(fmt: str, paths: Sequence[Path | str], cases_per_partition: int) -> list[InputPartition]:
    """Cut input files into partitions of about ``cases_per_partition`` lines (one line = one judgment)."""
    from sentencing.importers import IMPORTERS

    if fmt not in IMPORTERS:
        raise ValueError(f"format: unknown format {fmt!r}; known formats: {', '.join(IMPORTERS)}")
    if cases_per_partition < 1:
        raise ValueError(f"cases_per_partition must be at least 1, got {cases_per_partition}")
    parts: list[InputPartition] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"input: {path}: no such file")
        start, first, lines, offset = 0, 1, 0, 0
        with path.open("rb") as fh:
            for line in fh:
                offset += len(line)
                lines += 1
                if lines == cases_per_partition:
                    parts.append(InputPartition(fmt, str(path), start, offset, first))
                    start, first, lines = offset, first + lines, 0
        if lines:
            parts.append(InputPartition(fmt, str(path), start, offset, first))
    return parts


def _parquet_write(table: pa.Table, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, out)


def _cases_table(cases: list[tuple[int, Case]]) -> pa.Table:
    cols: dict[str, list[Any]] = {c: [] for c in CASE_COLUMNS}
    for seq, case in cases:
        names = case.charge_names
        cols["id"].append(case.id)
        cols["seq"].append(seq)
        cols["source"].append(case.source)
        cols["synthetic"].append(case.synthetic)
        cols["province"].append(case.known_province)
        cols["charge"].append(names[0] if names else None)
        cols["defendants"].append(len(case.defendants))
        cols["sentenced"].append(sum(d.sentence is not None for d in case.defendants))
        cols["case"].append(case.model_dump_json())
    schema = pa.schema([("id", pa.string()), ("seq", pa.int64()), ("source", pa.string()), ("synthetic", pa.bool_()),
                        ("province", pa.string()), ("charge", pa.string()), ("defendants", pa.int32()),
                        ("sentenced", pa.int32()), ("case", pa.string())])
    return pa.table(cols, schema=schema)


def import_partition(part: InputPartition, out: Path) -> dict[str, Any]:
    """Stage 1 from files: parse one partition's judgments → a cases Parquet file.

    Bad lines are reported (path, line, field, problem), never silently dropped or fatal.
    """
    from sentencing.importers import CaseFormatError, _parse_chunk

    with open(part.path, "rb") as fh:
        fh.seek(part.start)
        raw = fh.read(part.end - part.start).decode("utf-8-sig" if part.start == 0 else "utf-8")
    lines = [(part.first_line + i, line) for i, line in enumerate(raw.splitlines()) if line.strip()]
    parsed = _parse_chunk((part.fmt, part.path, lines))
    cases = [(0, c) for c in parsed if isinstance(c, Case)]
    errors = [str(e) for e in parsed if isinstance(e, CaseFormatError)]
    _parquet_write(_cases_table(cases), Path(out))
    return {"path": str(out), "cases": len(cases), "errors": errors}


def export_store_partition(part: StorePartition, out: Path) -> dict[str, Any]:
    """Stage 1 from the case store: one sequence range → a cases Parquet file (read-only on the store)."""
    from sentencing.store import CaseStore

    store = CaseStore(part.store)
    try:
        cases = []
        for stored in store.iter_stored(after_rowid=part.after):
            if stored.seq > part.upto:
                break
            cases.append((stored.seq, stored.case))
    finally:
        store.close()
    _parquet_write(_cases_table(cases), Path(out))
    return {"path": str(out), "cases": len(cases), "errors": []}


def plan_store(store_path: Path, *, upto: int, after: int = 0, cases_per_partition: int) -> list[StorePartition]:
    """Sequence ranges of about ``cases_per_partition`` stored cases each."""
    import sqlite3

    if cases_per_partition < 1:
        raise ValueError(f"cases_per_partition must be at least 1, got {cases_per_partition}")
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM cases WHERE seq > ? AND seq <= ? ORDER BY seq",
                                           (after, upto))]
    finally:
        conn.close()
    bounds = seqs[cases_per_partition - 1 :: cases_per_partition]
    if seqs and (not bounds or bounds[-1] != seqs[-1]):
        bounds.append(seqs[-1])
    parts, lo = [], after
    for hi in bounds:
        parts.append(StorePartition(str(store_path), lo, hi))
        lo = hi
    return parts


def read_cases(paths: Sequence[Path | str]) -> Iterator[Case]:
    """Cases back from cases Parquet files, in order."""
    for path in paths:
        column = pq.read_table(path, columns=["case"]).column("case")
        for text in column.to_pylist():
            yield Case.model_validate_json(text)


def features_partition(cases_path: Path, out: Path, holdout: HoldoutRule | None = None) -> dict[str, Any]:
    """Stage 2: a cases partition → one feature row per sentenced defendant (``training.train.prepare``)."""
    from training.train import prepare

    held = 0
    kept: list[Case] = []
    for case in read_cases([cases_path]):
        if holdout is not None and holdout.held(case):
            held += 1
        else:
            kept.append(case)
    ds, spec = prepare(kept)
    if ds.units.any():  # the law fixes a unit defendant's outcome: nothing for the models to learn
        ds = ds.subset(~ds.units)
    cols: dict[str, Any] = {feature_column(i): ds.X[:, i] for i in range(spec.n_features)}
    cols |= {
        "term_months": ds.term_months, "form": ds.forms, "case_id": ds.case_ids, "charge": ds.charges,
        "source": ds.sources, "province": ds.provinces,
    }
    table = pa.table(cols)
    table = table.replace_schema_metadata({"data_hash": ds.data_hash, "n_features": str(spec.n_features)})
    _parquet_write(table, Path(out))
    return {"path": str(out), "rows": len(ds), "cases": len(set(ds.case_ids)), "held": held,
            "data_hash": ds.data_hash}


def combined_hash(hashes: Sequence[str]) -> str:
    """One data hash over the partitions' hashes, in partition order."""
    h = hashlib.sha256()
    for part in hashes:
        h.update(part.encode())
    return h.hexdigest()


def build_shard(cases_paths: Sequence[Path | str], shard_dir: Path, encoder_dir: Path, factory: str | None,
                settings_overrides: dict[str, Any]) -> dict[str, Any]:
    """Stage 4: cases partitions → one RetrievalIndex bundle encoded with the shared encoder."""
    import time

    from retrieval.search import RetrievalIndex
    from sentencing.config import load_settings

    settings = load_settings(**settings_overrides)
    t = time.perf_counter()
    rows = sum(pc.sum(pq.read_table(p, columns=["sentenced"]).column("sentenced")).as_py() or 0 for p in cases_paths)
    index = RetrievalIndex.build(read_cases(cases_paths), Path(shard_dir), encoder_dir=Path(encoder_dir),
                                 factory=factory, settings=settings, expected_rows=rows)
    return {"path": str(shard_dir), "rows": len(index), "factory": index.manifest["factory"],
            "seconds": time.perf_counter() - t}


def feature_matrix(paths: Sequence[Path | str], n_features: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Feature rows back as a float64 matrix (for local fits on a sample)."""
    cols = [feature_column(i) for i in range(n_features)]
    tables = [pq.read_table(p, columns=cols) for p in paths]
    X = np.vstack([np.column_stack([t.column(c).to_numpy() for c in cols]) for t in tables if t.num_rows]) \
        if any(t.num_rows for t in tables) else np.zeros((0, n_features))
    return X if rows is None else X[rows]
