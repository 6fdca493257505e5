"""The dense encoder: trained here on the judgment corpus, served with numpy alone.

No Chinese pretrained weights can be downloaded, so the default encoder is learned in place:
a BPE tokenizer trained on the corpus (its merges are the corpus's frequent words: 被告人, 盗窃,
轻伤二级…), a ``sentence_transformers`` StaticEmbedding initialised from a truncated SVD of the
TF-IDF token–document matrix and tuned contrastively (MultipleNegativesRankingLoss) on weak pairs
of similar past judgments (retrieval.pairs). A static model is a lookup and a mean, so serving
needs no torch: :class:`StaticEncoder` reproduces ``SentenceTransformer.encode`` within 1e-5.

Any other local sentence-transformers model directory is also accepted (:class:`TransformerEncoder`,
torch inference).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Protocol

import numpy as np

from retrieval.arrays import concat_ranges

STATIC_MODULE = "StaticEmbedding"
NORMALIZE_MODULE = "Normalize"
UNK = "[UNK]"


class EncoderError(RuntimeError):
    """A model directory that cannot be read as an encoder."""


class Encoder(Protocol):
    dim: int
    fingerprint: str

    def encode(self, texts: list[str], *, batch_size: int = 1024) -> np.ndarray: ...


@dataclass(frozen=True)
class EncoderParams:
    """Training knobs; the defaults train 3,000 defendants in a few seconds on 2 cores."""

    dim: int = 256
    vocab_size: int = 16_000
    epochs: int = 2
    batch_size: int = 128
    learning_rate: float = 0.05
    max_pairs: int = 20_000
    seed: int = 0


# --- training (needs torch and sentence-transformers) ---------------------------------------


def train_tokenizer(texts: list[str], vocab_size: int):
    """A BPE tokenizer over the corpus, split first at whitespace, punctuation and digit runs."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(), pre_tokenizers.Digits(individual_digits=False)]
    )
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[UNK], show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def svd_init(tokenizer, texts: list[str], dim: int, seed: int = 0) -> np.ndarray:
    """Token vectors from a truncated SVD of the TF-IDF document–token matrix (an LSA start)."""
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer

    vocab = tokenizer.get_vocab_size()
    ids = _token_ids(tokenizer, texts)
    rows = np.repeat(np.arange(len(ids)), [len(x) for x in ids])
    cols = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(sum(len(x) for x in ids)))
    counts = sparse.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(ids), vocab))
    transformer = TfidfTransformer(sublinear_tf=True)
    tfidf = transformer.fit_transform(counts)
    k = max(1, min(dim, min(tfidf.shape) - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=4).fit(tfidf)
    weights = np.zeros((vocab, dim), dtype=np.float32)
    # Mean pooling of raw token counts would let 的/被告人 dominate; scaling each token's vector by
    # its IDF makes the pooled mean the LSA projection of the document's TF-IDF vector.
    idf = np.asarray(transformer.idf_, dtype=np.float32)
    weights[:, :k] = (svd.components_.T * idf[:, None]).astype(np.float32)
    rng = np.random.default_rng(seed)
    weights += rng.normal(0.0, 1e-3, size=weights.shape).astype(np.float32)
    return weights


def train_encoder(
    texts: list[str], pairs: list[tuple[str, str]], out_dir: Path, params: EncoderParams = EncoderParams()
) -> dict[str, object]:
    """Train and save a static sentence-transformers model in ``out_dir``; returns its training record.

    ``texts`` (before-judgment documents) train the tokenizer and the SVD start; ``pairs`` tune it.
    With fewer than a batch of pairs the SVD start is saved as it is (recorded as such).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    if not texts:
        raise EncoderError("no documents to train the encoder on")
    if params.epochs <= 0 or len(pairs) < params.batch_size:
        return _save_svd_start(texts, len(pairs), out_dir, params)
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    started = time.perf_counter()
    torch.manual_seed(params.seed)
    tokenizer = train_tokenizer(texts, params.vocab_size)
    weights = svd_init(tokenizer, texts, params.dim, params.seed)
    static = StaticEmbedding(tokenizer, embedding_weights=weights)
    model = SentenceTransformer(modules=[static, Normalize()], device="cpu")
    steps = 0
    if len(pairs) >= params.batch_size:
        anchors, positives = zip(*pairs, strict=True)
        data = Dataset.from_dict({"anchor": list(anchors), "positive": list(positives)})
        with tempfile.TemporaryDirectory() as scratch:
            args = SentenceTransformerTrainingArguments(
                output_dir=scratch,
                num_train_epochs=params.epochs,
                per_device_train_batch_size=params.batch_size,
                learning_rate=params.learning_rate,
                batch_sampler=BatchSamplers.NO_DUPLICATES,
                save_strategy="no",
                report_to="none",
                logging_strategy="no",
                disable_tqdm=True,
                use_cpu=True,
                seed=params.seed,
                dataloader_drop_last=True,
            )
            trainer = SentenceTransformerTrainer(
                model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
            )
            # One thread: a step is a gather/scatter over the embedding table, memory-bound; more
            # threads only contend with the other processes of a small machine.
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                steps = trainer.train().global_step
            finally:
                torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    record: dict[str, object] = {
        "kind": "static",
        "params": asdict(params),
        "documents": len(texts),
        "pairs": len(pairs),
        "steps": steps,
        "contrastive": steps > 0,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out_dir / "liangxing_encoder.json").write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    return record


STATIC_MODULE_TYPE = "sentence_transformers.sentence_transformer.modules.static_embedding.StaticEmbedding"
NORMALIZE_MODULE_TYPE = "sentence_transformers.base.modules.normalize.Normalize"


def _save_svd_start(texts: list[str], n_pairs: int, out_dir: Path, params: EncoderParams) -> dict[str, object]:
    """The SVD start saved as the same sentence-transformers directory, without importing torch.

    Importing torch and sentence-transformers costs seconds idle and a minute on a busy machine;
    with no contrastive step to run they would only serialise a lookup table.
    """
    from importlib.metadata import PackageNotFoundError, version

    from safetensors.numpy import save_file

    started = time.perf_counter()
    tokenizer = train_tokenizer(texts, params.vocab_size)
    weights = np.ascontiguousarray(svd_init(tokenizer, texts, params.dim, params.seed), dtype=np.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({"embedding.weight": weights}, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(out_dir / "tokenizer.json"))
    (out_dir / "1_Normalize").mkdir(exist_ok=True)
    _write_json(out_dir / "1_Normalize" / "config.json",
                {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"})
    _write_json(out_dir / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": STATIC_MODULE_TYPE},
        {"idx": 1, "name": "1", "path": "1_Normalize", "type": NORMALIZE_MODULE_TYPE},
    ])
    versions: dict[str, str] = {}
    for package, key in (("torch", "pytorch"), ("sentence-transformers", "sentence_transformers"),
                         ("transformers", "transformers")):
        try:
            versions[key] = version(package)
        except PackageNotFoundError:
            continue
    _write_json(out_dir / "config_sentence_transformers.json", {
        "__version__": versions, "default_prompt_name": None, "model_type": "SentenceTransformer",
        "prompts": {"document": "", "query": ""}, "similarity_fn_name": "cosine",
    })
    record: dict[str, object] = {
        "kind": "static",
        "params": asdict(params),
        "documents": len(texts),
        "pairs": n_pairs,
        "steps": 0,
        "contrastive": False,
        "seconds": round(time.perf_counter() - started, 2),
    }
    _write_json(out_dir / "liangxing_encoder.json", record)
    return record


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


# --- inference --------------------------------------------------------------------------------


def _modules(model_dir: Path) -> list[dict[str, str]]:
    path = model_dir / "modules.json"
    if not path.is_file():
        raise EncoderError(f"{model_dir} is not a sentence-transformers model directory: modules.json is missing")
    try:
        modules = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EncoderError(f"{path}: unreadable ({e})") from e
    if not isinstance(modules, list) or not modules:
        raise EncoderError(f"{path}: expected a non-empty list of modules")
    return modules


def _fingerprint(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


class StaticEncoder:
    """numpy inference of a StaticEmbedding model: BPE ids → embedding rows → mean → L2 norm."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        modules = _modules(model_dir)
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        if kinds[0] != STATIC_MODULE or any(k != NORMALIZE_MODULE for k in kinds[1:]):
            raise EncoderError(f"{model_dir}: not a static-embedding model (modules {kinds})")
        static_dir = model_dir / modules[0].get("path", "")
        weights_file = static_dir / "model.safetensors"
        tokenizer_file = static_dir / "tokenizer.json"
        for f in (weights_file, tokenizer_file):
            if not f.is_file():
                raise EncoderError(f"{model_dir}: {f.name} is missing")
        tensors = load_file(str(weights_file))
        if "embedding.weight" not in tensors:
            raise EncoderError(f"{weights_file}: no 'embedding.weight' tensor")
        self.weights: np.ndarray = np.ascontiguousarray(tensors["embedding.weight"], dtype=np.float32)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._weights64: np.ndarray | None = None  # made by the first batch encode (see encode)
        self.normalize = len(kinds) > 1
        self.dim = int(self.weights.shape[1])
        self.fingerprint = _fingerprint(weights_file, tokenizer_file)
        self.model_dir = model_dir
        self._pieces: dict[str, tuple[int, ...]] = {}

    def encode(self, texts: list[str], *, batch_size: int = 2048) -> np.ndarray:
        """Mean of the token vectors as a sparse (documents × vocabulary) product: no per-token copies."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        vocab = self.weights.shape[0]
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            # float64 accumulation: a sum of ~1,000 float32 rows in another order than torch's
            # EmbeddingBag would otherwise drift by ~1e-5
            if len(chunk) == 1:  # a query: a gather and a mean, without building a sparse matrix
                # float32 rows summed in float64: the same sums as of float64 rows, so a server keeps
                # no float64 copy of the table (twice its size) for single queries
                ids = np.array(self._query_ids(chunk[0]), dtype=np.int64)
                pooled = (self.weights[ids].sum(axis=0, dtype=np.float64) / max(len(ids), 1)).reshape(1, -1)
            else:
                from scipy import sparse  # not for a query: a server never imports scipy

                if self._weights64 is None:  # for the sparse product; a process that encodes batches builds indexes
                    self._weights64 = self.weights.astype(np.float64)
                ids, lengths = self._batch_ids(chunk)
                indptr = np.concatenate(([0], np.cumsum(lengths)))
                weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths)
                pooled = sparse.csr_matrix((weights, ids, indptr), shape=(len(chunk), vocab)) @ self._weights64
            vecs = np.asarray(pooled, dtype=np.float32)
            if self.normalize:
                vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            out[start : start + len(chunk)] = vecs
        return out

    def _batch_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of many documents, end to end, and each document's count of them.

        Each distinct clause of the batch is tokenised once (``encode_batch_fast``: no offsets).
        Documents repeat clauses (the header is written three times; charges, roles and the
        stock phrases of judgments recur across a corpus): the distinct clauses of a batch are
        about a tenth of its clauses, and give the same ids as the documents whole (see
        :data:`_CLAUSE_PIECE`). The ids are gathered with numpy, not token by token in Python.
        """
        doc_pieces = list(map(_CLAUSE_PIECE.findall, texts))
        every = list(chain.from_iterable(doc_pieces))
        slot: dict[str, int] = dict.fromkeys(every)  # type: ignore[arg-type]
        for k, piece in enumerate(slot):
            slot[piece] = k
        encoded = [e.ids for e in self.tokenizer.encode_batch_fast(list(slot), add_special_tokens=False)]
        piece_len = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        tokens = np.fromiter(chain.from_iterable(encoded), dtype=np.int64, count=int(piece_len.sum()))
        piece_start = np.cumsum(piece_len) - piece_len
        n_pieces = np.fromiter(map(len, doc_pieces), dtype=np.int64, count=len(doc_pieces))
        seq = np.fromiter(map(slot.__getitem__, every), dtype=np.int64, count=len(every))
        seq_len = piece_len[seq]
        ids = tokens[concat_ranges(piece_start[seq], piece_start[seq] + seq_len)]  # every clause occurrence's tokens
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), n_pieces)
        lengths = np.bincount(owner, weights=seq_len, minlength=len(texts)).astype(np.int64)
        return ids, lengths

    def _query_ids(self, text: str) -> list[int]:
        """Token ids of one query, clause by clause through a cache (see :data:`_CLAUSE_PIECE`).

        A query document repeats its header and shares its facts with the co-defendants'
        documents: most clauses come from the cache. Pieces are finer than the batch path's
        (:data:`_QUERY_PIECE`), so that a new case's clauses that differ from known ones only in a
        number or a listed name still come mostly from the cache: byte-pair encoding a new run of
        Chinese costs about 1 µs a character.
        """
        ids: list[int] = []
        for piece in _QUERY_PIECE.split(text):
            if piece:
                ids.extend(self._piece_ids(piece))
        return ids

    def _piece_ids(self, piece: str) -> tuple[int, ...]:
        cached = self._pieces.get(piece)
        if cached is None:
            cached = tuple(self.tokenizer.encode(piece, add_special_tokens=False).ids)
            if len(self._pieces) >= 16_384:
                self._pieces.clear()
            self._pieces[piece] = cached
        return cached


_CLAUSE_PIECE = re.compile(r"[^。，,；;：:]*[。，,；;：:]|[^。，,；;：:]+")
"""A text cut after each clause mark (。，；： and their ASCII forms), the mark kept with its clause.

The tokenizer normalises (NFKC) and then isolates every punctuation mark as a pre-token of its
own, so no token spans one: the ids of the clauses, end to end, are the ids of the text.
"""

_QUERY_PIECE = re.compile(r"(?<=[。，,；;：:、])|(?<=[0-9])(?=[\u4e00-\u9fff])|(?<=[\u4e00-\u9fff])(?=[0-9])")
"""Where a query is cut (``split``, empty pieces dropped): after each clause mark and 、, and between
an ASCII digit and a CJK ideograph (人民币|21700|元).

Each cut is a pre-token boundary of the tokenizer whatever the text around it: 、 is punctuation,
isolated like the clause marks; its Digits pre-tokenizer splits a run of numeric characters from
the rest, and a CJK unified ideograph (U+4E00–U+9FFF) is neither numeric nor changed by NFKC. An
ASCII digit is not cut from a character NFKC turns into a digit (５, ①), which would join its run.
"""


class TransformerEncoder:
    """Any local sentence-transformers model directory, run with torch (e.g. all-MiniLM-L6-v2)."""

    def __init__(self, model_dir: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        _modules(model_dir)
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except Exception as e:
            raise EncoderError(f"{model_dir}: cannot load as a sentence-transformers model ({e})") from e
        dim = self.model.get_sentence_embedding_dimension()
        if not dim:
            raise EncoderError(f"{model_dir}: model does not state its embedding dimension")
        self.dim = int(dim)
        weights = sorted(model_dir.rglob("*.safetensors")) or sorted(model_dir.rglob("*.bin"))
        if not weights:
            raise EncoderError(f"{model_dir}: no weights file (*.safetensors or *.bin)")
        self.fingerprint = _fingerprint(*weights)
        self.model_dir = model_dir

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        vecs = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dim)


class EncoderProcess:
    """The static encoder in a child process, for encoding a large index build's batches.

    In a thread, encoding and the build's row preparation (documents, profiles: Python) take turns
    holding the GIL: at a million rows the build waited on the encoder most of the time. The child
    loads the same model directory and runs the same code, so its vectors are the parent's.
    """

    def __init__(self, model_dir: Path) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent holds FAISS (OpenMP) and tokenizer threads
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_load_child_encoder, initargs=(str(model_dir),),
        )

    @staticmethod
    def possible(encoder: Encoder) -> bool:
        """A static encoder, in a process that may start children (not a daemonic worker, e.g. Dask's)."""
        import multiprocessing

        return isinstance(encoder, StaticEncoder) and not multiprocessing.current_process().daemon

    def submit(self, texts: list[str]) -> Future[np.ndarray]:
        return self._pool.submit(_encode_in_child, texts)

    def close(self) -> float | None:
        """Stops the child; returns its peak resident memory in MB (None when the child is broken)."""
        try:
            peak = self._pool.submit(peak_rss_mb).result(timeout=60)
        except Exception:  # a broken child: the build fails on its own error
            peak = None
        self._pool.shutdown(wait=True, cancel_futures=True)
        return peak


_CHILD_ENCODER: Encoder | None = None


def _load_child_encoder(model_dir: str) -> None:
    global _CHILD_ENCODER
    _CHILD_ENCODER = load_encoder(Path(model_dir))


def _encode_in_child(texts: list[str]) -> np.ndarray:
    assert _CHILD_ENCODER is not None, "the encoder process was started without its model"
    return _CHILD_ENCODER.encode(texts)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM: unlike ``ru_maxrss``, it starts afresh in a
    spawned process)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_encoder(model_dir: Path) -> Encoder:
    """The torch-free static encoder when the directory holds one, else the model run with torch."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise EncoderError(f"encoder directory {model_dir} does not exist")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in _modules(model_dir)]
    if kinds[0] == STATIC_MODULE:
        return StaticEncoder(model_dir)
    return TransformerEncoder(model_dir)
