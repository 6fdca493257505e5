"""The sparse side: BM25 (bm25s, Lucene variant) over jieba words of the documents the encoder reads.

bm25s computes every (document, word) BM25 term score once, at indexing time; a query's score of a
document is the sum of its words' term scores. Those term scores are kept on disk twice, as a CSC
matrix (per word: the documents holding it) and a CSR matrix (per document: its words), both
memory-mapped on load, so opening a million-row index reads nothing into memory and a query
touches only the documents that share a word with it: the CSC postings of the query's words when
the filter admits most rows, the CSR rows of the admitted documents when it admits few.

bm25s has no incremental add (IDF changes with every document), so the tokenised documents stay
beside the matrices (``tokens.txt``, one row per line) and the matrices are rebuilt from them when
rows are added; rebuilding from tokens is fast, re-segmenting with jieba is not. The tokens are
read only then.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from retrieval.index import IndexFormatError

TOKENS_FILE = "tokens.txt"
MATRIX_FILES = ("bm25_csc_data", "bm25_csc_rows", "bm25_csc_ptr", "bm25_csr_data", "bm25_csr_words", "bm25_csr_ptr")
VOCAB_FILE = "bm25_vocab.json"
CSR_ENTRY_COST = 8
"""Weight of a CSR entry (gather, match, sum) against a CSC posting (add.at): 40k demo rows, by p99."""


class SparseIndex:
    """BM25 scores over all rows; rows are aligned with the FAISS ids."""

    def __init__(
        self,
        vocab: dict[str, int],
        matrices: dict[str, np.ndarray],
        n_rows: int,
        *,
        tokens: list[list[str]] | None = None,
        tokens_path: Path | None = None,
    ) -> None:
        self.vocab = vocab
        self.n_rows = n_rows
        self.m = matrices
        self._tokens = tokens
        self._tokens_path = tokens_path

    @classmethod
    def from_tokens(cls, tokens: list[list[str]]) -> SparseIndex:
        """Index tokenised documents (bm25s computes the term scores)."""
        import bm25s
        from scipy import sparse

        model = bm25s.BM25()
        # An empty corpus row still needs a token for bm25s; it never matches a query word.
        model.index([t or ["\x00"] for t in tokens], show_progress=False)
        s = model.scores
        n_words = len(s["indptr"]) - 1  # bm25s's vocabulary may hold an extra word that no document has
        csc = sparse.csc_matrix(
            (np.asarray(s["data"], np.float32), np.asarray(s["indices"], np.int32), np.asarray(s["indptr"], np.int64)),
            shape=(len(tokens), n_words),
        )
        csr = csc.tocsr()
        csr.sort_indices()
        matrices = {
            "bm25_csc_data": csc.data.astype(np.float32), "bm25_csc_rows": csc.indices.astype(np.int32),
            "bm25_csc_ptr": csc.indptr.astype(np.int64),
            "bm25_csr_data": csr.data.astype(np.float32), "bm25_csr_words": csr.indices.astype(np.int32),
            "bm25_csr_ptr": csr.indptr.astype(np.int64),
        }
        vocab = {word: int(i) for word, i in model.vocab_dict.items() if i < n_words}
        return cls(vocab, matrices, len(tokens), tokens=tokens)

    def __len__(self) -> int:
        return self.n_rows

    @property
    def tokens(self) -> list[list[str]]:
        """The tokenised documents (read from ``tokens.txt`` on first use: only adding needs them)."""
        if self._tokens is None:
            if self._tokens_path is None or not self._tokens_path.is_file():
                raise IndexFormatError(f"sparse index tokens {self._tokens_path} are missing")
            with self._tokens_path.open(encoding="utf-8") as fh:
                self._tokens = [line.rstrip("\n").split() for line in fh]
        return self._tokens

    def extend(self, tokens: list[list[str]]) -> SparseIndex:
        """A new index over the old rows and these (the old one stays valid until replaced)."""
        return SparseIndex.from_tokens(self.tokens + tokens)

    def _word_ids(self, query_tokens: list[str]) -> np.ndarray:
        return np.asarray([self.vocab[t] for t in dict.fromkeys(query_tokens) if t in self.vocab], dtype=np.int64)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every row for the query words (words unknown to the corpus are ignored)."""
        return self._all_scores(self._word_ids(query_tokens))

    def search(self, query_tokens: list[str], k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) with a positive score among the allowed rows, best first."""
        words = self._word_ids(query_tokens)
        if words.size == 0 or k <= 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        csc_ptr = self.m["bm25_csc_ptr"]
        csc_cost = int((csc_ptr[words + 1] - csc_ptr[words]).sum())
        rows = np.flatnonzero(allowed[: self.n_rows]) if allowed is not None else None
        csr_ptr = self.m["bm25_csr_ptr"]
        if rows is not None and CSR_ENTRY_COST * int((csr_ptr[rows + 1] - csr_ptr[rows]).sum()) < csc_cost:
            scores = self._row_scores(rows, words)
            candidates = rows
        else:
            dense = self._all_scores(words)
            if allowed is not None:
                dense = np.where(allowed[: self.n_rows], dense, 0.0)
            candidates = np.flatnonzero(dense > 0)
            scores = dense[candidates]
        positive = np.flatnonzero(scores > 0)
        if positive.size > k:
            positive = positive[np.argpartition(-scores[positive], k)[:k]]
        # ties by row number, as a stable sort over all rows would order them
        order = positive[np.lexsort((candidates[positive], -scores[positive]))]
        return scores[order], candidates[order].astype(np.int64)

    def _all_scores(self, words: np.ndarray) -> np.ndarray:
        """Scores of all rows, word by word, accumulated in float32 in query-word order as bm25s does."""
        ptr, rows, data = self.m["bm25_csc_ptr"], self.m["bm25_csc_rows"], self.m["bm25_csc_data"]
        scores = np.zeros(self.n_rows, dtype=np.float32)
        for w in words.tolist():
            start, end = int(ptr[w]), int(ptr[w + 1])
            np.add.at(scores, rows[start:end], data[start:end])  # numpy ≥ 2: faster than a fancy +=
        return scores

    def _row_scores(self, rows: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Scores of these rows: their CSR words that are query words, summed per row."""
        ptr = self.m["bm25_csr_ptr"]
        starts, ends = ptr[rows], ptr[rows + 1]
        pos = _ranges(starts, ends)
        query = np.zeros(len(self.m["bm25_csc_ptr"]) - 1, dtype=np.float64)
        query[words] = 1.0
        values = self.m["bm25_csr_data"][pos] * query[self.m["bm25_csr_words"][pos]]
        lengths = ends - starts
        scores = np.zeros(len(rows), dtype=np.float64)
        filled = lengths > 0
        if pos.size:
            seg = np.concatenate(([0], np.cumsum(lengths)[:-1]))[filled]
            scores[filled] = np.add.reduceat(values, seg)
        return scores.astype(np.float32)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (TOKENS_FILE + ".tmp")
        if self._tokens is None and self._tokens_path is not None and self._tokens_path.is_file():
            shutil.copyfile(self._tokens_path, tmp)  # unchanged since loaded: no need to read it
        else:
            with tmp.open("w", encoding="utf-8") as fh:
                for row in self.tokens:
                    fh.write(" ".join(row) + "\n")
        os.replace(tmp, directory / TOKENS_FILE)
        self._tokens_path = directory / TOKENS_FILE
        for name in MATRIX_FILES:
            np.save(directory / f"{name}.npy", np.ascontiguousarray(self.m[name]))
        (directory / VOCAB_FILE).write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True) -> SparseIndex:
        """Open the memory-mapped matrices; a bundle that has only ``tokens.txt`` is re-indexed from it."""
        path = directory / TOKENS_FILE
        if not path.is_file():
            raise IndexFormatError(f"sparse index tokens {path} are missing")
        vocab_path = directory / VOCAB_FILE
        if not vocab_path.is_file():  # written by an older version: rebuild the matrices from the tokens
            with path.open(encoding="utf-8") as fh:
                return cls.from_tokens([line.rstrip("\n").split() for line in fh])
        matrices: dict[str, np.ndarray] = {}
        for name in MATRIX_FILES:
            file = directory / f"{name}.npy"
            if not file.is_file():
                raise IndexFormatError(f"sparse index matrix {file} is missing")
            try:
                # a plain ndarray view of the map: np.memmap's subclass overhead on every slice is not free
                matrices[name] = np.load(file, mmap_mode="r" if mmap else None).view(np.ndarray)
            except ValueError as e:
                raise IndexFormatError(f"{file}: unreadable ({e})") from e
        try:
            vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise IndexFormatError(f"{vocab_path}: not valid JSON ({e})") from e
        n_rows = len(matrices["bm25_csr_ptr"]) - 1
        return cls(vocab, matrices, n_rows, tokens_path=path)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(s, e)`` for each pair, without a Python loop."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + offsets
