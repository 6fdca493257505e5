"""The case id of every indexed row, compactly: a bundle's ``case_ids.txt`` memory-mapped.

A list of a million ``str`` objects takes about 84 MB in every server worker; mapped, the ids are
one file's pages, which the workers share through the page cache, plus 8 bytes a row for where
each id ends. Ids appended after loading (``RetrievalIndex.add``) are kept as strings until the
next save writes them out.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

_NEWLINE = ord("\n")


class CaseIds(Sequence[str]):
    """Row → case id; ``case_ids.txt`` holds one id per line, UTF-8."""

    def __init__(self, data: bytes | mmap.mmap = b"", ends: np.ndarray | None = None) -> None:
        self._data = data
        self._ends = ends if ends is not None else np.empty(0, np.int64)
        self._loaded = len(self._ends)
        self._tail: list[str] = []

    @classmethod
    def of(cls, ids: Iterable[str]) -> CaseIds:
        out = cls()
        out.extend(ids)
        return out

    @classmethod
    def load(cls, path: Path) -> CaseIds:
        """Map ``path``. A last line without its newline is an id, as ``str.splitlines`` read it."""
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size == 0:
                return cls()
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE)
        if not len(ends) or ends[-1] != size - 1:
            ends = np.append(ends, size)
        return cls(data, np.asarray(ends, dtype=np.int64))

    def save(self, path: Path) -> None:
        with open(path, "wb") as fh:
            if self._loaded:
                fh.write(memoryview(self._data)[: int(self._ends[-1])])
                fh.write(b"\n")
            fh.write("".join(c + "\n" for c in self._tail).encode("utf-8"))

    def append(self, case_id: str) -> None:
        self._tail.append(case_id)

    def extend(self, ids: Iterable[str]) -> None:
        self._tail.extend(ids)

    def __len__(self) -> int:
        return self._loaded + len(self._tail)

    def _start(self, i: int) -> int:
        """Where mapped id ``i`` begins in the file."""
        return int(self._ends[i - 1]) + 1 if i else 0

    def _run(self, start: int, stop: int) -> list[str]:
        """Ids ``start``…``stop - 1``; the mapped ones decoded in one pass."""
        out: list[str] = []
        mapped_stop = min(stop, self._loaded)
        if start < mapped_stop:
            out = self._data[self._start(start) : int(self._ends[mapped_stop - 1])].decode("utf-8").split("\n")
        loaded = self._loaded
        out.extend(self._tail[max(start - loaded, 0) : max(stop - loaded, 0)])
        return out

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step == 1:
                return self._run(start, stop) if start < stop else []
            return [self[j] for j in range(start, stop, step)]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range (0..{n - 1})")
        if i < self._loaded:
            return self._data[self._start(i) : int(self._ends[i])].decode("utf-8")
        return self._tail[i - self._loaded]

    def __iter__(self) -> Iterator[str]:
        return iter(self._run(0, len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]
