"""The sparse side: TF-IDF cosine over the tokens of the documents the encoder reads (retrieval.text).

Why TF-IDF cosine and not BM25: a query here is a whole document (a case's header and facts,
hundreds of words), not a few keywords. BM25 adds up the term scores of every shared word, so two
long judgments that share many incidental words (place names, the evidence list's 截图、辨认笔录…)
outscore a short one that shares the charge and the offence; cosine similarity of sublinear TF-IDF
vectors (the CAIL2018 baseline's representation) divides by the document's norm and weighs the
query's words by their own counts, so the header's charges and circumstances (written three times
in every document) count as intended. On the real judgments (benchmarks/eval_retrieval.py) it
ranks same-charge precedents higher than BM25 over the same tokens.

A document's weight of word w is ``(1 + ln tf) · idf(w) / ‖d‖`` with ``idf = ln((1+N)/(1+df)) + 1``
(scikit-learn's smooth IDF); a query's is ``(1 + ln tf) · idf(w)``; the score is their dot product
(the query's norm does not change the ranking). The document weights are computed once, at
indexing time, and kept on disk twice, as a CSC matrix (per word: the documents holding it) and a
CSR matrix (per document: its words), both memory-mapped on load, so opening a large index reads
nothing into memory and a query touches only the documents that share a word with it: the CSC
postings of the query's words when the filter admits most rows, the CSR rows of the admitted
documents when it admits few.

Each word's postings are filed by the row's *group* (its principal charge, :func:`group_key`), rows
in order within a group: a search restricted to one charge (the service's searches always are)
reads only that charge's stretch of each word's postings, found by binary search. An index written
without groups is scored over all postings, as before.

IDF changes with every document, so the tokenised documents stay beside the matrices
(``tokens.txt``, one row per line) and the matrices are rebuilt from them when rows are added;
rebuilding from tokens is fast, re-segmenting with jieba is not. The tokens are read only then.
``sparse.json`` records the format and the tokenizer version (retrieval.text.TOKENIZER_VERSION);
an index made by other code (the BM25 format of version 1, or other tokens) is refused with the
reason, since its stored tokens cannot match what this code makes of a query.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.arrays import concat_ranges
from retrieval.index import IndexFormatError
from retrieval.text import TOKENIZER_VERSION

FORMAT_VERSION = 2
"""1: BM25 (bm25s) over version-1 tokens, no ``sparse.json``; 2: TF-IDF cosine."""
SCORING = "tfidf-cosine"
TOKENS_FILE = "tokens.txt"
META_FILE = "sparse.json"
MATRIX_FILES = (
    "tfidf_csc_data", "tfidf_csc_rows", "tfidf_csc_ptr",
    "tfidf_csr_data", "tfidf_csr_words", "tfidf_csr_ptr",
    "tfidf_idf",
)
GROUP_FILES = ("tfidf_csc_groups", "tfidf_row_groups")
"""Optional: each posting's group (sorted within a word) and each row's; both or neither."""
NO_GROUP = -1
VOCAB_FILE = "tfidf_vocab.json"
V1_VOCAB_FILE = "bm25_vocab.json"
CSR_ENTRY_COST = 2
"""Weight of a CSR entry (gather, match, sum) against a CSC posting (added in place): at 130k demo rows
an entry took 9–17 ns, a posting 5.8 ns (a filter admitting 3% of the rows: 3.0 ms by rows, 8.0 by
postings; 10%: 14.4 against 8.1)."""


def group_key(charge: str | None) -> int:
    """The group a row's postings are filed under: its principal charge, as a stable 31-bit hash
    (the sparse side keeps no vocabulary of charges; two charges sharing a hash only widen a
    restricted search, whose filter still decides). ``NO_GROUP`` without a charge."""
    return NO_GROUP if charge is None else zlib.crc32(charge.encode("utf-8")) & 0x7FFFFFFF


class SparseIndex:
    """TF-IDF cosine scores over all rows; rows are aligned with the FAISS ids."""

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
    def from_tokens(cls, tokens: list[list[str]], groups: Sequence[int] | np.ndarray | None = None) -> SparseIndex:
        """Index tokenised documents: sublinear TF × smooth IDF, each row scaled to unit length;
        ``groups`` (one :func:`group_key` a row) files each word's postings by group."""
        from scipy import sparse

        if groups is not None and len(groups) != len(tokens):
            raise ValueError(f"{len(groups)} groups for {len(tokens)} documents")

        vocab: dict[str, int] = {}
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        total = int(lengths.sum())
        cols = np.fromiter((vocab.setdefault(w, len(vocab)) for t in tokens for w in t), dtype=np.int32, count=total)
        rows = np.repeat(np.arange(len(tokens), dtype=np.int32), lengths)
        counts = sparse.csr_matrix(
            (np.ones(total, dtype=np.float32), (rows, cols)), shape=(len(tokens), len(vocab))
        )  # duplicates summed: term counts
        counts.sum_duplicates()
        df = np.bincount(counts.indices, minlength=len(vocab))
        idf = (np.log((1.0 + len(tokens)) / (1.0 + df)) + 1.0).astype(np.float32)
        data = (1.0 + np.log(counts.data)) * idf[counts.indices]
        row_of = np.repeat(np.arange(len(tokens)), np.diff(counts.indptr))
        norms = np.sqrt(np.bincount(row_of, weights=np.square(data, dtype=np.float64), minlength=len(tokens)))
        data = (data / np.maximum(norms, 1e-12)[row_of]).astype(np.float32)
        csr = sparse.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)
        csr.sort_indices()
        csc = csr.tocsc()
        csc.sort_indices()
        matrices = {
            "tfidf_csc_data": csc.data.astype(np.float32), "tfidf_csc_rows": csc.indices.astype(np.int32),
            "tfidf_csc_ptr": csc.indptr.astype(np.int64),
            "tfidf_csr_data": csr.data.astype(np.float32), "tfidf_csr_words": csr.indices.astype(np.int32),
            "tfidf_csr_ptr": csr.indptr.astype(np.int64),
            "tfidf_idf": idf,
        }
        if groups is not None:
            row_groups = np.asarray(groups, dtype=np.int32)
            posting_groups = row_groups[matrices["tfidf_csc_rows"]]
            word_of = np.repeat(np.arange(len(vocab), dtype=np.int32), np.diff(csc.indptr))
            order = np.lexsort((posting_groups, word_of))  # stable: rows stay in order within a group
            matrices["tfidf_csc_data"] = matrices["tfidf_csc_data"][order]
            matrices["tfidf_csc_rows"] = matrices["tfidf_csc_rows"][order]
            matrices["tfidf_csc_groups"] = posting_groups[order]
            matrices["tfidf_row_groups"] = row_groups
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

    def extend(self, tokens: list[list[str]], groups: Sequence[int] | None = None) -> SparseIndex:
        """A new index over the old rows and these (the old one stays valid until replaced); filed by
        group when this one is and ``groups`` gives the new rows'."""
        row_groups = self.m.get("tfidf_row_groups")
        if row_groups is None or groups is None:
            return SparseIndex.from_tokens(self.tokens + tokens)
        return SparseIndex.from_tokens(self.tokens + tokens, np.concatenate([row_groups, np.asarray(groups)]))

    def _query(self, query_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(word ids, weights) of the query's words known to the corpus: (1 + ln tf) · idf."""
        counts = Counter(t for t in query_tokens if t in self.vocab)
        words = np.fromiter((self.vocab[t] for t in counts), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        return words, (1.0 + np.log(tf)) * self.m["tfidf_idf"][words]

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """Score of every row for the query (words unknown to the corpus are ignored)."""
        return self._all_scores(*self._query(query_tokens))

    def search(
        self, query_tokens: list[str], k: int, allowed: np.ndarray | None, group: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) with a positive score among the allowed rows, best first.

        ``group``: every allowed row is of this :func:`group_key` (a same-charge filter), so only
        that group's postings are read where the index is filed by group.
        """
        words, weights = self._query(query_tokens)
        if words.size == 0 or k <= 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        starts, ends = self._postings(words, group)
        csc_cost = int((ends - starts).sum())
        rows = np.flatnonzero(allowed[: self.n_rows]) if allowed is not None else None
        csr_ptr = self.m["tfidf_csr_ptr"]
        if rows is not None and CSR_ENTRY_COST * int((csr_ptr[rows + 1] - csr_ptr[rows]).sum()) < csc_cost:
            scores = self._row_scores(rows, words, weights)
            candidates = rows
        else:
            dense = self._all_scores(words, weights, starts, ends)
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

    def _postings(self, words: np.ndarray, group: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Where each word's postings start and end: all of them, or those of ``group`` only."""
        ptr = self.m["tfidf_csc_ptr"]
        starts, ends = ptr[words], ptr[words + 1]
        groups = self.m.get("tfidf_csc_groups")
        if group is None or groups is None:
            return starts, ends
        key = np.int32(group)
        lo, hi = [], []
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            filed = groups[start:end]  # sorted: the word's postings by group
            lo.append(start + int(np.searchsorted(filed, key, "left")))
            hi.append(start + int(np.searchsorted(filed, key, "right")))
        return np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)

    def _all_scores(
        self, words: np.ndarray, weights: np.ndarray, starts: np.ndarray | None = None, ends: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores of all rows (those outside ``starts``–``ends``, when given, left at 0), accumulated
        in float64 in query-word order.

        Word by word, each word's postings added in place through their rows (a word's postings
        name each row once, so a buffered ``+=`` adds them all): no index array over every posting
        of the query. At 130k rows a query's 30 words hold 1.4M postings; this took 8 ms where
        gathering them end to end into one ``bincount`` took 21, for the same sums bit for bit.
        """
        rows, data = self.m["tfidf_csc_rows"], self.m["tfidf_csc_data"]
        if starts is None or ends is None:
            starts, ends = self._postings(words, None)
        scores = np.zeros(self.n_rows, dtype=np.float64)
        factors = np.asarray(weights).astype(data.dtype)
        for start, end, factor in zip(starts.tolist(), ends.tolist(), factors, strict=True):
            scores[rows[start:end]] += data[start:end] * factor
        return scores.astype(np.float32)

    def _row_scores(self, rows: np.ndarray, words: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Scores of these rows: their CSR words that are query words, weighted and summed per row."""
        ptr = self.m["tfidf_csr_ptr"]
        starts, ends = ptr[rows], ptr[rows + 1]
        pos = concat_ranges(starts, ends)
        query = np.zeros(len(self.m["tfidf_csc_ptr"]) - 1, dtype=np.float64)
        query[words] = weights
        values = self.m["tfidf_csr_data"][pos] * query[self.m["tfidf_csr_words"][pos]]
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
        for name in MATRIX_FILES + GROUP_FILES:
            if name in self.m:
                np.save(directory / f"{name}.npy", np.ascontiguousarray(self.m[name]))
            else:
                (directory / f"{name}.npy").unlink(missing_ok=True)
        (directory / VOCAB_FILE).write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        meta = {"format_version": FORMAT_VERSION, "scoring": SCORING, "tokenizer_version": TOKENIZER_VERSION,
                "rows": self.n_rows}
        (directory / META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True) -> SparseIndex:
        """Open the memory-mapped matrices; a bundle that has only ``tokens.txt`` and ``sparse.json``
        is re-indexed from its tokens. Another format or tokenizer version raises IndexFormatError."""
        path = directory / TOKENS_FILE
        if not path.is_file():
            raise IndexFormatError(f"sparse index tokens {path} are missing")
        _check_version(directory)
        vocab_path = directory / VOCAB_FILE
        if not vocab_path.is_file():  # tokens only: rebuild the matrices from them
            with path.open(encoding="utf-8") as fh:
                return cls.from_tokens([line.rstrip("\n").split() for line in fh])
        matrices: dict[str, np.ndarray] = {}
        present = [name for name in GROUP_FILES if (directory / f"{name}.npy").is_file()]
        if present and len(present) != len(GROUP_FILES):
            raise IndexFormatError(f"{directory}: {present[0]}.npy without the other group file")
        for name in MATRIX_FILES + tuple(present):
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
        n_rows = len(matrices["tfidf_csr_ptr"]) - 1
        if len(matrices["tfidf_idf"]) != len(matrices["tfidf_csc_ptr"]) - 1:
            raise IndexFormatError(f"{directory}: IDF has {len(matrices['tfidf_idf'])} words, "
                                   f"the matrices {len(matrices['tfidf_csc_ptr']) - 1}")
        if present and (len(matrices["tfidf_csc_groups"]) != len(matrices["tfidf_csc_rows"])
                        or len(matrices["tfidf_row_groups"]) != n_rows):
            raise IndexFormatError(f"{directory}: the group files do not match the matrices")
        return cls(vocab, matrices, n_rows, tokens_path=path)


REBUILD_HINT = "rebuild the index (`sentencing retrieval build`)"


def _check_version(directory: Path) -> None:
    """Refuse sparse data this code would score wrongly: another format or other tokens."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        made_by = "the BM25 format (version 1)" if (directory / V1_VOCAB_FILE).is_file() else "an older version"
        raise IndexFormatError(
            f"{directory}: the sparse index was written by {made_by}, with tokens that this code "
            f"(tokenizer version {TOKENIZER_VERSION}) does not make from a query; {REBUILD_HINT}"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise IndexFormatError(f"{meta_path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise IndexFormatError(f"{meta_path}: expected a JSON object")
    if meta.get("format_version") != FORMAT_VERSION or meta.get("scoring") != SCORING:
        raise IndexFormatError(
            f"{meta_path}: format_version {meta.get('format_version')!r}, scoring {meta.get('scoring')!r} "
            f"(this code reads {FORMAT_VERSION}, {SCORING!r}); {REBUILD_HINT}"
        )
    if meta.get("tokenizer_version") != TOKENIZER_VERSION:
        raise IndexFormatError(
            f"{meta_path}: tokens made by tokenizer version {meta.get('tokenizer_version')!r}, this code "
            f"tokenizes queries with version {TOKENIZER_VERSION}; {REBUILD_HINT}"
        )
