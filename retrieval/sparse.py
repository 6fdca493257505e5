"""The sparse side: BM25 (bm25s) over jieba words of the same documents the encoder reads.

bm25s has no incremental add (IDF changes with every document), so the tokenised documents are
kept beside the index (``tokens.txt``, one row per line) and the BM25 matrix is rebuilt from them
when rows are added; rebuilding from tokens is fast, re-segmenting with jieba is not.
"""

from __future__ import annotations

import os
from pathlib import Path

import bm25s
import numpy as np

from retrieval.index import IndexFormatError

TOKENS_FILE = "tokens.txt"


class SparseIndex:
    """BM25 scores over all rows; rows are aligned with the FAISS ids."""

    def __init__(self, tokens: list[list[str]]) -> None:
        self.tokens = tokens
        self.model = bm25s.BM25()
        # An empty corpus row still needs a token for bm25s; it never matches a query word.
        self.model.index([t or ["\x00"] for t in tokens], show_progress=False)
        self.vocab: dict[str, int] = self.model.vocab_dict

    def __len__(self) -> int:
        return len(self.tokens)

    def extend(self, tokens: list[list[str]]) -> SparseIndex:
        """A new index over the old rows and these (the old one stays valid until replaced)."""
        return SparseIndex(self.tokens + tokens)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every row for the query words (words unknown to the corpus are ignored)."""
        known = [t for t in dict.fromkeys(query_tokens) if t in self.vocab]
        if not known:
            return np.zeros(len(self.tokens), dtype=np.float32)
        return np.asarray(self.model.get_scores(known), dtype=np.float32)

    def search(self, query_tokens: list[str], k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) with a positive score among the allowed rows, best first."""
        scores = self.scores(query_tokens)
        if allowed is not None:
            scores = np.where(allowed[: len(scores)], scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        if positive.size > k:
            positive = positive[np.argpartition(-scores[positive], k)[:k]]
        order = positive[np.argsort(-scores[positive], kind="stable")]
        return scores[order], order.astype(np.int64)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (TOKENS_FILE + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in self.tokens:
                fh.write(" ".join(row) + "\n")
        os.replace(tmp, directory / TOKENS_FILE)

    @classmethod
    def load(cls, directory: Path) -> SparseIndex:
        path = directory / TOKENS_FILE
        if not path.is_file():
            raise IndexFormatError(f"sparse index tokens {path} are missing")
        with path.open(encoding="utf-8") as fh:
            tokens = [line.rstrip("\n").split() for line in fh]
        return cls(tokens)
