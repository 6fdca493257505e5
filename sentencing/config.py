"""One typed configuration for the whole service, read from the environment or a TOML file.

Every tunable lives here rather than as scattered constants. Environment variables are
``LIANGXING_<FIELD>`` (``LIANGXING_HOME=/srv/liangxing``); a TOML file named by
``LIANGXING_CONFIG`` supplies the same fields.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIANGXING_", extra="forbid")

    home: Path = Field(default=Path("var"), description="local data folder for the embedded default")
    store: Path | None = Field(default=None, description="SQLite case store; default <home>/cases.sqlite")
    model_dir: Path | None = Field(default=None, description="trained model directory; default <home>/model")
    index_dir: Path | None = Field(default=None, description="retrieval index directory; default <home>/index")
    registry: Path | None = Field(
        default=None, description="model registry (sentencing retrain); the service serves its CURRENT version"
    )
    ruleset: Path | None = Field(default=None, description="charge catalogue TOML; default the bundled one")
    demo_cases: int = Field(default=3000, ge=10, description="size of the synthetic demo corpus built on first start")
    demo_seed: int = 20261127
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="server processes (one per core)")
    request_threads: int = Field(
        default=4, ge=1, le=256,
        description="requests a server process computes at once (its thread pool). A process computes on one "
        "core at a time (the GIL); more threads only contend for it: at 1M cases with 2 workers and 32 "
        "connections, 40 threads gave 103-107 requests/s, 4 gave 137-154 (benchmarks/bench_service.py)",
    )
    max_batch: int = Field(default=50, ge=1, description="cases per batch request")
    max_defendants: int = Field(default=50, ge=1, description="defendants per case")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_burst: int = Field(default=60, ge=1, description="requests a key may send at once (token bucket)")
    cors_origins: list[str] = Field(default_factory=list)
    similar_cases: int = Field(default=10, ge=1, le=100)
    guideline_cache_size: int = Field(default=1024, ge=0,
                                      description="defendants whose guideline results a predictor keeps (LRU; 0: none)")
    # Similar-case retrieval (retrieval/): encoder, FAISS index choice, result spread, cohorts.
    retrieval_dim: int = Field(default=256, ge=16, le=1024, description="static encoder embedding size")
    retrieval_epochs: int = Field(default=2, ge=0, le=50, description="contrastive epochs (0: SVD start only)")
    retrieval_train_max: int = Field(default=20_000, ge=100, description="defendants the encoder trains on")
    retrieval_factory: str | None = Field(default=None, description="FAISS index-factory string; default by size")
    retrieval_exact_max: int = Field(default=50_000, ge=1, description="rows up to which the index is exact (Flat)")
    retrieval_large_factory: str = Field(
        default="IVF1024,PQ64x4fsr,Refine(SQfp16)",
        description="factory above exact_max: IVF trains and fills in seconds where HNSW32 took 8x longer; 4-bit "
        "fast-scan PQ codes (SIMD lookup tables) choose the candidates and 16-bit floats rescore them. At 1.3M rows "
        "a filtered FAISS search took a third of IVF1024,SQ8's; rescoring with 8-bit codes instead held recall@10 "
        "at 0.95 against 0.98 (benchmarks/bench_retrieval.py)",
    )
    retrieval_ef_search: int = Field(default=128, ge=1, description="HNSW efSearch")
    retrieval_nprobe: int = Field(
        default=8, ge=1, description="IVF lists probed per query, at least (a filtered search probes more, the "
        "narrower its filter): at 1.3M rows recall@10 0.979 against 0.981 with 16, for 15% less FAISS time"
    )
    retrieval_refine_k_factor: int = Field(
        default=1, ge=1, description="a refined index (…,Refine(SQfp16)) rescores this many times the candidates asked "
        "for (at least 200): at 1.3M rows 2 lifted recall@10 from 0.978 to 0.985 for 10% more time"
    )
    retrieval_refine_reads: Literal["map", "read"] = Field(
        default="read", description="how a memory-mapped refined index (…,Refine(SQfp16)) reads the codes it "
        "rescores candidates with: 'read' with a system call a row (the page cache holds them, once); 'map' through "
        "FAISS's memory map, every page faulted in by a thread at load, so that each server worker holds them all "
        "as its own resident memory (680 MB at a million rows). At 1.3M rows with 2 workers, 'read' kept the "
        "server's RSS (summed over its processes) at 1.1 GB against 2.2–2.4, for 1.0–3.3 ms more server CPU a "
        "3-defendant request (the runs of docs/service.md, alternated; this machine's speed moves that much)"
    )
    retrieval_search_threads: int = Field(
        default=1, ge=1, description="FAISS threads per query in the service (concurrent requests use the cores)"
    )
    retrieval_max_per_province: int = Field(default=3, ge=1, description="similar cases per province in a result")
    retrieval_max_per_court: int = Field(default=2, ge=1, description="similar cases per court in a result")
    retrieval_sparse_max_rows: int = Field(default=200_000, ge=0, description="sparse side only up to this many rows")
    retrieval_filter_cache_mb: int = Field(
        default=16, ge=0, description="memory for cached search filters (packed bitmaps: 100 of them at 1.3M rows); "
        "a filter by charge and province not in the cache is composed from per-charge and per-province bitmaps"
    )
    retrieval_dense_weight: float = Field(
        default=0.0, ge=0.0,
        description="weight of the dense ranking in hybrid fusion, the sparse one's being 1 (retrieval.fusion); 0: "
        "dense rows only fill in. benchmarks/eval_retrieval.py chose 0 by cross-validation on every fold of the "
        "real judgments (any weight > 0 lowered charge@10 + CAIL on held-out queries)",
    )
    retrieval_encode_process_rows: int = Field(
        default=50_000, ge=0,
        description="an index build past this many rows encodes in a child process (static encoder): the "
        "build's own thread then prepares rows without waiting for the GIL; 0: from the start",
    )
    cohort_min_n: int = Field(default=3, ge=1, description="no cohort statistic below this many cases")

    @property
    def store_path(self) -> Path:
        return self.store or self.home / "cases.sqlite"

    @property
    def model_path(self) -> Path:
        return self.model_dir or self.home / "model"

    @property
    def index_path(self) -> Path:
        return self.index_dir or self.home / "index"


def load_settings(**overrides: object) -> Settings:
    """Settings from ``LIANGXING_CONFIG`` (TOML), then the environment, then ``overrides``."""
    values: dict[str, object] = {}
    if path := os.environ.get("LIANGXING_CONFIG"):
        values.update(tomllib.loads(Path(path).read_text(encoding="utf-8")))
    env = Settings()
    merged = {**values, **{k: getattr(env, k) for k in env.model_fields_set}, **overrides}
    return Settings(**merged)
