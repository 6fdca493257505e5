"""The FAISS side: an index-factory index whose int64 ids are metadata rows, with filters.

Each indexed defendant is one *row*; the row number is its FAISS id, and compact numpy columns
(charge, province, tier, date, sentence…) aligned with the rows answer filters without touching
Case objects, so filtering stays a few milliseconds at a million rows. Exact search (``Flat``)
restricts to the allowed rows with an IDSelector; approximate indexes (HNSW, IVF) search with the
selector too; HNSW falls back to an exact scan of the allowed rows when a filter leaves few, IVF
probes more lists the narrower the filter (up to all of them: an exact scan of the allowed codes).
Deleted rows are removed from the index where it supports ``remove_ids`` and are always
tombstoned in the metadata, so an HNSW graph never returns them.

Flat and HNSW indexes number their vectors by position, so they sit inside an ``IDMap2`` that
maps positions to rows. An IVF index stores the row ids in its lists itself and is used bare:
through an IDMap, ``remove_ids`` would shift the position → row map under the ids the lists
still hold (later searches return the wrong rows), and every filtered search would translate each
scanned id through the map (4–5× slower at a million rows).

A refined IVF (``IVF…,PQ…x4fsr,Refine(SQfp16)``) is used bare too: its fast-scan PQ lists (4-bit
codes, scanned with SIMD lookup tables) choose ``k_factor·k`` candidates among the allowed rows,
and finer codes of every vector (16-bit floats, or 8-bit with ``Refine(SQ8)``) rescore them. Its
refinement codes are numbered by position, so rows are added in order and deletions stay
tombstones (``IndexRefine`` has no ``remove_ids``). A memory-mapped refined index may instead be
rescored here from codes read with ``pread`` (``refine_reads="read"``, :class:`RefineCodes`): less
resident memory per process, more time per search.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from sentencing.atomic import write_bytes_atomic

log = logging.getLogger("liangxing.retrieval")

DATE_UNKNOWN = np.iinfo(np.int32).min
"""Date column sentinel: days since 1970-01-01, or this when the judgment date is unknown."""

COLUMNS: dict[str, np.dtype] = {
    "charge": np.dtype(np.int32),  # Vocab "charges", −1 none
    "family": np.dtype(np.int16),  # Vocab "families", −1 unknown
    "province": np.dtype(np.int16),  # Vocab "provinces", −1 unknown
    "tier": np.dtype(np.int16),  # Vocab "tiers", −1 unknown
    "court": np.dtype(np.int32),  # Vocab "courts", −1 unknown
    "date": np.dtype(np.int32),  # days since epoch, DATE_UNKNOWN
    "term": np.dtype(np.int16),  # CAIL term label (months, 0, −1 life, −2 death); −3 no sentence
    "form": np.dtype(np.int8),  # SentenceForm index, −1 no sentence
    "circumstances": np.dtype(np.int32),  # bit mask (retrieval.profile.CIRCUMSTANCE_BITS)
    "role": np.dtype(np.int8),  # Role index
    "amount": np.dtype(np.float32),  # yuan, NaN unknown
    "synthetic": np.dtype(np.bool_),
    "deleted": np.dtype(np.bool_),
}
NO_SENTENCE = -3


class IndexFormatError(RuntimeError):
    """An index directory that is missing, incomplete or inconsistent."""


class Vocab:
    """Strings ↔ small ints for a metadata column (charges, provinces, tiers, courts)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = list(values)
        self.ids: dict[str, int] = {v: i for i, v in enumerate(self.values)}

    def add(self, value: str | None) -> int:
        if value is None:
            return -1
        if (i := self.ids.get(value)) is None:
            i = self.ids[value] = len(self.values)
            self.values.append(value)
        return i

    def get(self, value: str | None) -> int:
        """The id of a known value; −2 (matches no row) when unknown, −1 for None."""
        if value is None:
            return -1
        return self.ids.get(value, -2)

    def name(self, i: int) -> str | None:
        return self.values[i] if 0 <= i < len(self.values) else None


class Metadata:
    """Column arrays aligned with FAISS ids (row numbers)."""

    def __init__(self, columns: dict[str, np.ndarray] | None = None) -> None:
        self.columns = columns or {name: np.empty(0, dtype=dt) for name, dt in COLUMNS.items()}
        self._pending: list[dict[str, np.ndarray]] = []

    def __len__(self) -> int:
        self.flush()
        return len(self.columns["charge"])

    def __getitem__(self, name: str) -> np.ndarray:
        self.flush()
        return self.columns[name]

    def append(self, batch: dict[str, np.ndarray]) -> None:
        missing = set(COLUMNS) - set(batch)
        if missing:
            raise ValueError(f"metadata batch lacks columns {sorted(missing)}")
        self._pending.append({k: np.asarray(batch[k], dtype=COLUMNS[k]) for k in COLUMNS})

    def flush(self) -> None:
        if self._pending:
            self.columns = {
                k: np.concatenate([np.asarray(self.columns[k])] + [b[k] for b in self._pending]) for k in COLUMNS
            }
            self._pending = []

    def make_writable(self) -> None:
        self.flush()
        self.columns = {k: np.array(v) for k, v in self.columns.items()}

    def save(self, directory: Path) -> None:
        self.flush()
        directory.mkdir(parents=True, exist_ok=True)
        for name, arr in self.columns.items():
            np.save(directory / f"{name}.npy", np.ascontiguousarray(arr))

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True) -> Metadata:
        columns: dict[str, np.ndarray] = {}
        for name, dt in COLUMNS.items():
            path = directory / f"{name}.npy"
            if not path.is_file():
                raise IndexFormatError(f"metadata column {path} is missing")
            arr = np.load(path, mmap_mode="r" if mmap else None)
            if arr.dtype != dt or arr.ndim != 1:
                raise IndexFormatError(f"metadata column {path}: expected 1-d {dt}, found {arr.ndim}-d {arr.dtype}")
            # a plain ndarray view of the map: np.memmap's subclass overhead on every slice and
            # element read is several times the read itself
            columns[name] = arr.view(np.ndarray)
        lengths = {len(a) for a in columns.values()}
        if len(lengths) != 1:
            raise IndexFormatError(f"metadata columns in {directory} differ in length: {sorted(lengths)}")
        return cls(columns)


class ChargeOrder:
    """The rows grouped by charge (罪名): a stable argsort of the charge column, and the columns
    that filters and cohorts read, permuted alike.

    A charge's rows are then one contiguous slice, in row order, so that a same-charge filter or
    a cohort reads the ~1/20 of the rows that hold its charge instead of comparing every row.
    Built from the metadata as it is (rebuild it after rows change).
    """

    COLUMNS = ("province", "tier", "date", "circumstances", "term", "form", "deleted")

    def __init__(self, meta: Metadata) -> None:
        charge = np.asarray(meta["charge"])
        n = len(charge)
        # charge ids are small: an int16 key sorts by radix, 3-4x faster than int32
        small = n == 0 or (int(charge.min()) >= np.iinfo(np.int16).min and int(charge.max()) <= np.iinfo(np.int16).max)
        order = np.argsort(charge.astype(np.int16) if small else charge, kind="stable")
        self.n_rows = n
        self.rows = order.astype(np.int32 if n < 2**31 else np.int64)
        self._bounds: dict[int, tuple[int, int]] = {}
        if n:
            grouped = charge[order]
            cuts = np.flatnonzero(grouped[1:] != grouped[:-1]) + 1
            starts, ends = np.concatenate(([0], cuts)), np.concatenate((cuts, [n]))
            self._bounds = {int(c): (int(s), int(e)) for c, s, e in zip(grouped[starts], starts, ends, strict=True)}
        self.columns = {name: np.asarray(meta[name])[order] for name in self.COLUMNS}
        self._derived: dict[str, Any] = {}
        self._lock = threading.Lock()

    def derived(self, name: str, compute: Callable[[ChargeOrder], Any]) -> Any:
        """A value computed from these columns once (e.g. a combined column a cohort counts)."""
        value = self._derived.get(name)
        if value is None:
            with self._lock:
                value = self._derived.get(name)
                if value is None:
                    value = self._derived[name] = compute(self)
        return value

    def charge_ids(self) -> list[int]:
        """The charge ids that rows hold."""
        return list(self._bounds)

    def span(self, charge_id: int) -> slice:
        """Positions (in this order) of the rows of a charge id; empty for an id no row has."""
        start, end = self._bounds.get(int(charge_id), (0, 0))
        return slice(start, end)

    def charge_columns(self, charge_id: int) -> tuple[slice, dict[str, np.ndarray]]:
        """The span of a charge's rows and the columns over just those rows (views, no copies)."""
        span = self.span(charge_id)
        return span, {name: column[span] for name, column in self.columns.items()}

    def positions(self, span: slice, rows: np.ndarray | list[int]) -> np.ndarray:
        """Positions within ``span`` of those ``rows`` that lie in it (rows of other charges are skipped)."""
        in_span = self.rows[span]
        rows = np.asarray(rows, dtype=np.int64)
        pos = np.searchsorted(in_span, rows)
        hit = pos < len(in_span)
        hit[hit] = in_span[pos[hit]] == rows[hit]
        return pos[hit]


def live_in_scope(columns: Metadata | dict[str, np.ndarray], scope: str, province_id: int | None) -> np.ndarray:
    """Rows not deleted and, unless ``province_id`` is None (scope ``any``), of the province (scope
    ``own``) or of the other known provinces (scope ``other``): the base of every filter and cohort."""
    keep = ~np.asarray(columns["deleted"])
    if province_id is not None:
        provinces = np.asarray(columns["province"])
        keep &= (provinces == province_id) if scope == "own" else (provinces != province_id) & (provinces >= 0)
    return keep


_search_threads: int | None = None


def set_search_threads(n: int) -> None:
    """FAISS (OpenMP) threads per search, process-wide.

    A service answers concurrent requests, each a search of one case's defendants: one thread per
    search leaves the other cores to the other requests, and spares OpenMP's spin-waits on a busy
    machine. OpenMP keeps the count per thread, and a thread that never set it runs on every
    core, so :meth:`VectorIndex.search_batch` sets it again in whichever thread searches (the
    server's request threads): 0.3 µs a call.
    """
    global _search_threads
    _search_threads = max(1, int(n))
    faiss.omp_set_num_threads(_search_threads)


def default_factory(n_rows: int, *, exact_max: int, large: str) -> str:
    """Exact below ``exact_max`` rows (fast enough, and exact), the approximate ``large`` above."""
    return "IDMap2,Flat" if n_rows <= exact_max else large


class RowFilter:
    """The rows a search may return: their count, the packed bitmap FAISS reads, the boolean mask.

    Built once per distinct filter and reused (RetrievalIndex caches them), since at a million
    rows computing the mask and packing it costs more than the approximate search itself. A
    cached (frozen) filter keeps only the bitmap, 1 bit a row (160 KB at 1.3M rows, against 1.3 MB
    for the mask): only the sparse side and exact scans of a few rows read the mask, unpacked then.
    """

    __slots__ = ("_bitmap", "_mask", "n_allowed", "n_rows")

    @classmethod
    def packed(cls, bitmap: np.ndarray, n_rows: int, n_allowed: int) -> RowFilter:
        """A filter from its FAISS bitmap (``pack_rows``' layout; read-only from then on)."""
        out = cls.__new__(cls)
        out.n_rows, out.n_allowed, out._mask = n_rows, n_allowed, None
        bitmap.flags.writeable = False
        out._bitmap = bitmap
        return out

    def __init__(self, mask: np.ndarray, *, freeze: bool = True) -> None:
        self.n_rows = len(mask)
        self.n_allowed = int(np.count_nonzero(mask))
        self._mask: np.ndarray | None = None
        self._bitmap: np.ndarray | None = None
        if freeze:  # a cached filter is shared by searches: nothing may change it
            self._bitmap = np.packbits(mask, bitorder="little")
            self._bitmap.flags.writeable = False
        else:
            self._mask = mask

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:  # then the bitmap is set
            mask = np.unpackbits(self.bitmap, count=self.n_rows, bitorder="little").view(bool)
            mask.flags.writeable = False
            self._mask = mask
        return self._mask

    @property
    def bitmap(self) -> np.ndarray:
        if self._bitmap is None:
            self._bitmap = np.packbits(self.mask, bitorder="little")
        return self._bitmap


def pack_rows(mask: np.ndarray) -> np.ndarray:
    """A boolean row mask as FAISS's bitmap (bit i of byte i >> 3), padded with zero bytes to whole
    64-bit words so that filters can be composed and counted a word at a time."""
    packed = np.packbits(mask, bitorder="little")
    out = np.zeros(-(-len(packed) // 8) * 8, dtype=np.uint8)
    out[: len(packed)] = packed
    return out


class FilterBases:
    """The bitmaps the common filters are composed of: each charge's live rows, each province's
    rows and the known rows of every other province, the rows of a known province, the live rows;
    and the live rows counted by charge and province.

    A filter of a charge and a province scope (other provinces, own province, anywhere) is then
    one word-wise AND, its count a difference of two table entries: about 12 µs at 1.3M rows (85
    µs with the "other provinces" bitmap and the count computed per filter), against 1–3 ms to
    compare the columns. A filter seen for the first time costs little, so the filter cache can
    stay small. About 90 bitmaps of 1 bit a row (15 MB at 1.3M rows).
    """

    def __init__(self, order: ChargeOrder, meta: Metadata) -> None:
        n = order.n_rows
        self.n_rows = n
        live = ~np.asarray(meta["deleted"], dtype=bool)
        provinces = np.asarray(meta["province"])
        known = provinces >= 0
        self.live = pack_rows(live)
        self.known = pack_rows(known)
        self.empty = np.zeros_like(self.live)
        # live rows by charge and province id + 1 (0: province unknown)
        slots = int(provinces.max()) + 2 if n else 1
        self.charges: dict[int, np.ndarray] = {}
        self._counts: dict[int, np.ndarray] = {}
        ordered_live, ordered_provinces = ~order.columns["deleted"], order.columns["province"]
        mask = np.zeros(n, dtype=bool)
        for charge_id in order.charge_ids():
            span = order.span(charge_id)
            rows = order.rows[span]
            mask[rows] = live[rows]
            self.charges[charge_id] = pack_rows(mask)
            mask[rows] = False
            in_span = ordered_provinces[span][ordered_live[span]].astype(np.int64) + 1
            self._counts[charge_id] = np.bincount(in_span, minlength=slots)
        self._counts_live = np.bincount(provinces[live].astype(np.int64) + 1, minlength=slots)
        self._no_rows = np.zeros(slots, dtype=np.int64)
        self.provinces: dict[int, np.ndarray] = {}
        self.elsewhere: dict[int, np.ndarray] = {}
        for p in np.unique(provinces[known]):
            own = provinces == p
            self.provinces[int(p)] = pack_rows(own)
            self.elsewhere[int(p)] = pack_rows(known & ~own)
        for bitmap in (self.live, self.known, self.empty, *self.charges.values(), *self.provinces.values(),
                       *self.elsewhere.values()):
            bitmap.flags.writeable = False

    def compose(self, charge_id: int | None, scope: str, province_id: int | None) -> RowFilter:
        """Rows of ``charge_id`` (any charge if None), live, in ``scope`` relative to ``province_id``
        (``live_in_scope``'s rule; None for scope ``any``)."""
        if charge_id is None:
            base, counts = self.live, self._counts_live
        else:
            base, counts = self.charges.get(charge_id, self.empty), self._counts.get(charge_id, self._no_rows)
        if province_id is None:
            return RowFilter.packed(base, self.n_rows, int(counts.sum()))
        own = int(counts[province_id + 1]) if 0 <= province_id < len(counts) - 1 else 0
        if scope == "own":
            other, n_allowed = self.provinces.get(province_id, self.empty), own
        else:
            other, n_allowed = self.elsewhere.get(province_id, self.known), int(counts[1:].sum()) - own
        bitmap = (base.view(np.uint64) & other.view(np.uint64)).view(np.uint8)
        return RowFilter.packed(bitmap, self.n_rows, n_allowed)


_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)
_NOWAIT = getattr(os, "RWF_NOWAIT", None)  # Linux 4.14+: a read that never waits for the disk


class RefineCodes:
    """The refinement codes of a memory-mapped refined index, read a row at a time with ``pread``.

    FAISS rescores a refined search's candidates through its map of the index file, and the kernel
    keeps each page it touched (and the 64 KB around it) mapped into the process: a server worker
    at a million rows came to hold 600 of the 680 MB of 16-bit codes as resident memory, counted
    again in each worker's RSS although the page cache holds them once. Read here, the codes stay
    in the page cache only, at a system call a row: at 1.3M rows a filtered search of 200
    candidates took 0.61 ms at p50 against 0.30 through the map (docs/service.md: the service).

    The page cache lets the codes go while the server idles (this machine's virtual machine
    reclaims them within minutes). Each row is therefore read with ``preadv2(RWF_NOWAIT)``, which
    returns at once, without the data, when any of it is not cached: the rows that did not come
    are advised ``POSIX_FADV_WILLNEED`` together, so that their disk reads overlap instead of
    queueing one behind another, and then read waiting. A cached row costs one system call and a
    row on disk three; nothing is guessed from timings. (Read one after another, evicted rows made
    a search take 14–15 ms at p50 instead of 3.0 advised; the timing rule this replaces advised
    every row for a minute after a slow read, and on this machine took cached reads of 5–7 µs a
    row for waits.) Where the kernel or file system refuses ``RWF_NOWAIT``, every row is advised
    before it is read.

    :attr:`rows_read` and :attr:`rows_waited` (rows that had to come from the disk) count the
    rows since the load, for the benchmarks.

    ``write_index`` puts a refined index's codes last, just before its ``k_factor`` (a float32):
    where they start is worked out from the file size and checked against FAISS's own decoding of
    the first, a middle and the last row, so a file laid out otherwise is never misread (``open``
    returns None, and FAISS rescores through the map).
    """

    def __init__(self, path: Path, codes: faiss.Index, offset: int) -> None:
        self.codes = codes
        self.code_size = int(codes.code_size)
        self.offset = offset
        self.rows_read = 0
        self.rows_waited = 0
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd, offset, 0, os.POSIX_FADV_RANDOM)
        self.nowait = _NOWAIT is not None and self._nowait_works()

    def _nowait_works(self) -> bool:
        """Whether this file can be read with ``RWF_NOWAIT`` (ext4, xfs, btrfs and tmpfs can; some can't)."""
        try:
            os.preadv(self._fd, [bytearray(self.code_size)], self.offset, _NOWAIT)
        except BlockingIOError:
            return True  # supported: the row just is not cached
        except OSError:  # EOPNOTSUPP, EINVAL
            return False
        return True

    @classmethod
    def open(cls, path: Path, refine: faiss.IndexRefine) -> RefineCodes | None:
        codes = faiss.downcast_index(refine.refine_index)
        n = int(codes.ntotal)
        if not isinstance(codes, faiss.IndexFlatCodes) or n == 0:
            return None
        offset = path.stat().st_size - 4 - n * int(codes.code_size)
        if offset < 0:
            return None
        reader = cls(path, codes, offset)
        rows = np.unique(np.array([0, n // 2, n - 1], dtype=np.int64))
        expected = np.vstack([codes.reconstruct(int(r)) for r in rows])
        if not np.array_equal(reader.vectors(rows), expected):
            return None
        return reader

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The decoded vectors of ``rows`` (float32, one row each)."""
        fd, size, offset = self._fd, self.code_size, self.offset
        starts = [offset + row * size for row in rows.tolist()]
        raw = bytearray(len(starts) * size)
        view = memoryview(raw)
        if self.nowait:
            missing = []
            preadv = os.preadv
            for k, at in enumerate(starts):
                try:
                    if preadv(fd, (view[k * size : (k + 1) * size],), at, _NOWAIT) != size:  # partly cached
                        missing.append(k)
                except BlockingIOError:
                    missing.append(k)
        else:
            missing = list(range(len(starts)))
        if missing:
            if _WILLNEED is not None:
                advise = os.posix_fadvise
                for k in missing:
                    advise(fd, starts[k], size, _WILLNEED)
            for k in missing:
                if os.preadv(fd, (view[k * size : (k + 1) * size],), starts[k]) != size:
                    raise IndexFormatError(f"refinement codes: the index file ended before row {int(rows[k])}")
        self.rows_read += len(starts)
        self.rows_waited += len(missing) if self.nowait else 0
        # FAISS decodes 16-bit floats with SIMD: 560 rows in 70 µs, against 150 for numpy's astype
        return self.codes.sa_decode(np.frombuffer(raw, dtype=np.uint8).reshape(len(starts), size))


_MADV_POPULATE_READ = 22  # Linux 5.14+: fault a range in with one system call, reading what is not cached
_POPULATE_CHUNK = 64 << 20


def _madvise() -> Callable[[int, int, int], int] | None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.madvise
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    call.restype = ctypes.c_int
    return call


def populate_mapped_codes(owner: faiss.Index, refine: faiss.IndexRefine) -> threading.Thread | None:
    """Fault a memory-mapped refined index's codes into this process, in the background.

    Through the map, the first search to touch a page takes a page fault for it: at 1.3M rows the
    FAISS stage of a filtered search (200 candidates, each on its own 4 KB page) took 0.86–1.23 ms at
    p99 right after the load, 0.35–0.43 with the pages populated (docs/service.md). Populating the
    680 MB took 0.14 s with the file in the page cache. The pages are the page cache's: workers
    mapping the same file share them (each worker's RSS counts them, PSS divides them). ``owner``
    (the object that owns the mapping) is held until the thread ends, so the mapping outlives it.
    """
    codes = faiss.downcast_index(refine.refine_index)
    if not isinstance(codes, faiss.IndexFlatCodes):
        return None
    vector = codes.codes
    if vector.is_owned or vector.size() == 0:
        return None
    view = faiss.rev_swig_ptr(vector.data(), vector.size())

    def populate() -> None:
        held = owner  # noqa: F841  (keeps the mapping alive while the thread reads it)
        madvise, page = _madvise(), os.sysconf("SC_PAGE_SIZE")
        start = view.ctypes.data
        aligned = start - start % page
        end = start + len(view)
        for at in range(aligned, end, _POPULATE_CHUNK):
            size = min(_POPULATE_CHUNK, end - at)
            if madvise is None or madvise(at, size, _MADV_POPULATE_READ) != 0:
                lo = max(at - start, 0)  # an older kernel: touch a byte a page (GIL released by numpy)
                int(view[lo : at - start + size : page].sum())

    thread = threading.Thread(target=populate, name="liangxing-populate-codes", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class SearchKnobs:
    ef_search: int = 128
    nprobe: int = 8
    refine_k_factor: int = 1
    """A refined index rescores this many times k candidates of its first stage…"""
    refine_min_candidates: int = 200
    """…and at least this many: 4-bit codes alone rank the very nearest few poorly."""
    exact_subset_max: int = 20_000
    """Below this many allowed rows an approximate index is scanned exactly over just those rows."""


def _stores_row_ids(index: faiss.Index) -> bool:
    """Whether an index is used bare, without an IDMap: an IVF, or an IVF refined (module docstring)."""
    return not isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap) and isinstance(_searched(index), faiss.IndexIVF)


def _searched(index: faiss.Index) -> faiss.Index:
    """The index whose type shapes a search: the one inside an IDMap, a refined index's first stage."""
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        return faiss.downcast_index(index.index)
    if isinstance(index, faiss.IndexRefine):
        return faiss.downcast_index(index.base_index)
    return index


def _bare(factory: str) -> str:
    for prefix in ("IDMap2,", "IDMap,"):
        if factory.startswith(prefix):
            return factory[len(prefix):]
    return factory


class VectorIndex:
    """A FAISS index whose ids are rows (IDMap2 around Flat/HNSW, IVF bare), inner product on
    L2-normalised vectors."""

    def __init__(self, index: faiss.Index, factory: str, path: Path | None = None, mmapped: bool = False) -> None:
        self.factory = factory
        self.path = path
        self.mmapped = mmapped
        self._adopt(index)

    def _adopt(self, index: faiss.Index) -> None:
        self._owner = index  # the object FAISS returned owns the C++ index; a downcast view does not
        top = faiss.downcast_index(index)
        self.refine: faiss.IndexRefine | None = top if isinstance(top, faiss.IndexRefine) else None
        if isinstance(top, faiss.IndexIDMap2 | faiss.IndexIDMap):
            inner = faiss.downcast_index(top.index)
            ids = faiss.vector_to_array(top.id_map)
            # An IVF saved inside an IDMap by an earlier version: its lists hold positions, which are
            # the rows as long as nothing was removed; use it bare (see the module docstring).
            if isinstance(inner, faiss.IndexIVF) and np.array_equal(ids, np.arange(len(ids), dtype=ids.dtype)):
                top = inner
                self.factory = _bare(self.factory)
        self.index = top
        self.inner = _searched(top)
        self._identity_ids: bool | None = None
        self.refine_codes: RefineCodes | None = None
        """Where a refined search's candidates are rescored from, when not through FAISS's map (``load``)."""
        self.populating: threading.Thread | None = None
        """The thread faulting a mapped index's refinement codes in (``load``, ``refine_reads="map"``)."""

    @classmethod
    def create(cls, dim: int, factory: str) -> VectorIndex:
        bare = _bare(factory)
        try:
            index = faiss.index_factory(dim, bare, faiss.METRIC_INNER_PRODUCT)
            if not _stores_row_ids(faiss.downcast_index(index)):
                index = faiss.index_factory(dim, "IDMap2," + bare, faiss.METRIC_INNER_PRODUCT)
                return cls(index, "IDMap2," + bare)
        except RuntimeError as e:
            raise ValueError(f"retrieval factory {factory!r} is not a valid FAISS index-factory string: {e}") from e
        return cls(index, bare)

    @property
    def positional(self) -> bool:
        """Whether rows must be added in order (a refined index numbers its codes by position)."""
        return self.refine is not None

    @property
    def exact(self) -> bool:
        return isinstance(self.inner, faiss.IndexFlat)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def _writable(self) -> None:
        if self.mmapped and self.path is not None:
            self._adopt(faiss.read_index(str(self.path)))
            self.mmapped = False
        self._identity_ids = None

    def train(self, vectors: np.ndarray) -> None:
        if self.index.is_trained:
            return
        inner = self.inner
        if isinstance(inner, faiss.IndexIVF) and len(vectors) < inner.nlist:
            raise ValueError(
                f"index {self.factory} needs at least {inner.nlist} vectors to train its lists, got {len(vectors)}: "
                "use fewer lists (IVF<n>) or switch to it at a larger size (retrieval_exact_max)"
            )
        self.index.train(np.ascontiguousarray(vectors, dtype=np.float32))

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._writable()
        if not self.index.is_trained:
            raise ValueError(f"index {self.factory} needs training before add")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, np.int64)
        if self.positional:  # see the module docstring
            if not np.array_equal(ids, np.arange(self.ntotal, self.ntotal + len(ids))):
                raise ValueError(f"index {self.factory} numbers vectors by position: rows must be added in order, "
                                 f"from {self.ntotal}")
            self.index.add(vectors)
        else:
            self.index.add_with_ids(vectors, ids)
        self._identity_ids = None

    def remove(self, ids: np.ndarray) -> int:
        """Physically remove ids where the index type can; 0 when it cannot (HNSW): rows stay tombstoned."""
        self._writable()
        self._identity_ids = None
        try:
            return int(self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))
        except RuntimeError:
            return 0

    @property
    def can_reconstruct(self) -> bool:
        """Whether stored vectors can be read back by id (flat storage: Flat, HNSW…,Flat; not IVF)."""
        return isinstance(self.index, faiss.IndexIDMap2) and not isinstance(self.inner, faiss.IndexIVF)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        return self.index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | RowFilter | None, knobs: SearchKnobs
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, row ids) among the allowed rows (a boolean mask over rows), best first."""
        return self.search_batch(np.asarray(query).reshape(1, -1), k, allowed, knobs)[0]

    def search_batch(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | RowFilter | None, knobs: SearchKnobs
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for each row of ``queries`` under the same filter, in one FAISS call."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if _search_threads is not None:
            faiss.omp_set_num_threads(_search_threads)
        none = (np.empty(0, np.float32), np.empty(0, np.int64))
        if k <= 0 or self.ntotal == 0:
            return [none] * len(queries)
        if allowed is None:
            scores, ids = self._search(queries, k, None, knobs)
        else:
            flt = allowed if isinstance(allowed, RowFilter) else RowFilter(np.asarray(allowed, bool), freeze=False)
            n_allowed = flt.n_allowed
            if n_allowed == 0:
                return [none] * len(queries)
            if not self.exact and n_allowed <= knobs.exact_subset_max and self.can_reconstruct:
                rows = np.flatnonzero(flt.mask)
                return [self._scan(q, rows, k) for q in queries]
            # built per call, never shared between threads: an IDMap's search swaps its own selector
            # into the parameters while it runs
            bitmap = flt.bitmap
            selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
            scores, ids = self._search(queries, min(k, n_allowed), selector, knobs, n_allowed)
        keep = ids >= 0
        return [(s[m], i[m]) for s, i, m in zip(scores, ids, keep, strict=True)]

    def _search(
        self, queries: np.ndarray, k: int, selector: faiss.IDSelector | None, knobs: SearchKnobs,
        n_allowed: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One FAISS search (scores and ids, ``k`` a query, −1 padded); rescored here from
        :attr:`refine_codes` when it is set, as FAISS's ``IndexRefine`` would."""
        codes, refine = self.refine_codes, self.refine  # one reading: an add() replaces both
        if codes is None or refine is None:
            return self.index.search(queries, k, params=self._params(selector, knobs, k, n_allowed))
        params = self._base_params(selector, knobs, k, n_allowed)
        _, candidates = refine.base_index.search(queries, k * self._k_factor(knobs, k), params=params)
        found = [c[c >= 0] for c in candidates]
        if len(queries) == 1:  # one query's candidates are distinct rows already
            decoded = [codes.vectors(found[0])]
        else:  # co-defendants share a few candidates: each row is read once
            rows = np.sort(np.concatenate(found))
            first = np.ones(len(rows), dtype=bool)
            first[1:] = rows[1:] != rows[:-1]
            rows = rows[first]  # np.unique took 8× longer here
            every = codes.vectors(rows)
            decoded = [every[np.searchsorted(rows, f)] for f in found]
        # each query's candidates as one matrix in FAISS's order, whether searched alone or with
        # others: the products then do not depend on the batch (a matrix-matrix product would)
        rescored = [(f, vectors @ q) for f, vectors, q in zip(found, decoded, queries, strict=True)]
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for q, (candidates_q, similarity_q) in enumerate(rescored):
            best = np.argsort(-similarity_q, kind="stable")[:k]
            scores[q, : len(best)], ids[q, : len(best)] = similarity_q[best], candidates_q[best]
        return scores, ids

    def _filtered_nprobe(self, nprobe: int, k: int, n_allowed: int) -> int:
        """More lists for a narrower filter, so that the probed lists still hold ~4k allowed rows.

        The probed lists hold ``ntotal·nprobe/nlist`` rows of which a share ``n_allowed/ntotal``
        passes the filter; a narrow filter (a rare charge, one province) probes up to every list,
        which is then an exact scan of the allowed rows' codes.
        """
        nlist = int(self.inner.nlist)
        needed = -(-4 * k * nlist // max(n_allowed, 1))
        return int(min(nlist, max(nprobe, needed)))

    def _flat_storage(self) -> faiss.IndexFlat | None:
        """The flat vector storage of an HNSW index when its positions are the row ids, else None.

        Rows are added in order and HNSW never removes, so position i normally holds row i; then an
        exact scan of a few allowed rows can run on the storage with a bitmap selector, reading the
        vectors in place instead of reconstructing (copying) them.
        """
        inner = self.inner
        if not isinstance(inner, faiss.IndexHNSW) or not isinstance(self.index, faiss.IndexIDMap2):
            return None
        storage = faiss.downcast_index(inner.storage)
        if not isinstance(storage, faiss.IndexFlat):
            return None
        if self._identity_ids is None:
            ids = faiss.vector_to_array(self.index.id_map)
            self._identity_ids = bool(np.array_equal(ids, np.arange(len(ids), dtype=ids.dtype)))
        return storage if self._identity_ids else None

    def _scan(self, query: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        storage = self._flat_storage()
        if storage is not None and len(rows) and rows[-1] < storage.ntotal:
            allowed = np.zeros(storage.ntotal, dtype=bool)
            allowed[rows] = True
            bitmap = np.packbits(allowed, bitorder="little")
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
            scores, ids = storage.search(query.reshape(1, -1), min(k, len(rows)), params=params)
            keep = ids[0] >= 0
            return scores[0][keep].astype(np.float32), ids[0][keep].astype(np.int64)
        scores = self.reconstruct(rows) @ query
        top = np.argsort(-scores, kind="stable")[:k] if len(rows) <= k else np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top].astype(np.float32), rows[top].astype(np.int64)

    def _params(
        self, selector: faiss.IDSelector | None, knobs: SearchKnobs, k: int, n_allowed: int | None = None
    ) -> faiss.SearchParameters | None:
        """Search parameters; with ``n_allowed`` (a filtered search) an IVF probes more lists."""
        params = self._base_params(selector, knobs, k, n_allowed)
        if self.refine is None:
            return params
        refined = faiss.IndexRefineSearchParameters()
        refined.k_factor = self._k_factor(knobs, k)
        refined.base_index_params = params  # faiss's wrapper keeps the assigned parameters alive
        if selector is not None:
            refined.sel = selector
        return refined

    @staticmethod
    def _k_factor(knobs: SearchKnobs, k: int) -> int:
        """A refined search rescores ``k_factor·k`` candidates of its first stage."""
        return max(knobs.refine_k_factor, -(-knobs.refine_min_candidates // k))

    def _base_params(
        self, selector: faiss.IDSelector | None, knobs: SearchKnobs, k: int, n_allowed: int | None = None
    ) -> faiss.SearchParameters | None:
        """The parameters of the index searched first (a refined index's first stage)."""
        inner = self.inner
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(knobs.ef_search, k)
        elif isinstance(inner, faiss.IndexIVF):
            params = faiss.SearchParametersIVF()
            params.nprobe = knobs.nprobe if n_allowed is None else self._filtered_nprobe(knobs.nprobe, k, n_allowed)
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)
        self.path = path

    @classmethod
    def load(cls, path: Path, factory: str, *, mmap: bool = True, refine_reads: str = "read") -> VectorIndex:
        """``refine_reads``: ``"read"`` rescores a memory-mapped refined index from codes read with
        ``pread`` (:class:`RefineCodes`), ``"map"`` leaves it to FAISS through the map."""
        if refine_reads not in ("map", "read"):
            raise ValueError(f"refine_reads must be 'map' or 'read', not {refine_reads!r}")
        if not path.is_file():
            raise IndexFormatError(f"FAISS index file {path} is missing")
        flag = getattr(faiss, "IO_FLAG_MMAP_IFC", 0) | faiss.IO_FLAG_MMAP if mmap else 0
        try:
            index = faiss.read_index(str(path), flag)
            mmapped = bool(mmap)
        except RuntimeError:
            try:
                index = faiss.read_index(str(path))
            except RuntimeError as e:
                raise IndexFormatError(f"FAISS index file {path} is unreadable: {e}") from e
            mmapped = False
        top = faiss.downcast_index(index)
        if not isinstance(top, faiss.IndexIDMap2 | faiss.IndexIDMap) and not _stores_row_ids(top):
            raise IndexFormatError(f"{path}: expected an IDMap, IVF or refined IVF index, found {type(top).__name__}")
        loaded = cls(index, factory, path, mmapped)
        if refine_reads == "map" and mmapped and loaded.refine is not None:
            loaded.populating = populate_mapped_codes(index, loaded.refine)
        if refine_reads == "read" and mmapped and loaded.refine is not None:
            loaded.refine_codes = RefineCodes.open(path, loaded.refine)
            if loaded.refine_codes is None and loaded.ntotal:
                log.warning("retrieval_refine_reads='read': the refinement codes of %s could not be located in the "
                            "file; they are read through the memory map instead", path)
        return loaded


def write_json(path: Path, payload: object) -> None:
    write_bytes_atomic(path, json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8"))
