"""A large index build encodes in a child process and writes its display rows as it goes: the same
index as encoding in a thread and writing the rows at the end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval import search
from retrieval.search import CHUNK, RetrievalIndex
from sentencing.config import Settings
from tests.retrieval_cases import make_cases

pytestmark = pytest.mark.slow


def test_process_encoding_and_spilled_rows_give_the_same_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = make_cases(CHUNK + 600, seed=3)
    rows = sum(len(c.defendants) for c in corpus)
    assert rows > CHUNK  # a full batch goes through the child, the last partial one is encoded here
    base = {"retrieval_epochs": 0, "retrieval_dim": 32, "retrieval_sparse_max_rows": 0,
            "retrieval_factory": "IDMap2,Flat"}
    threaded = RetrievalIndex.build(iter(corpus), tmp_path / "thread",
                                    settings=Settings(**base, retrieval_encode_process_rows=10**9))
    monkeypatch.setattr(search, "SPILL_ROWS", 1)  # the rows written out after every batch
    in_child = RetrievalIndex.build(iter(corpus), tmp_path / "process", encoder_dir=tmp_path / "thread" / "encoder",
                                    settings=Settings(**base, retrieval_encode_process_rows=0))
    assert threaded.manifest["encoded_in_process"] is False and in_child.manifest["encoded_in_process"] is True
    ids = np.arange(len(threaded), dtype=np.int64)
    assert len(in_child) == len(threaded) == rows
    assert np.array_equal(in_child.vectors.reconstruct(ids), threaded.vectors.reconstruct(ids))
    assert in_child.case_ids == threaded.case_ids
    assert [in_child.rows.raw(i) for i in range(rows)] == [threaded.rows.raw(i) for i in range(rows)]
    assert (tmp_path / "process" / "rows.jsonl").read_bytes() == (tmp_path / "thread" / "rows.jsonl").read_bytes()
