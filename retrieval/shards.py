"""A similar-case index split into shards (分片): a search fans out over them and merges the hits.

Each shard is a complete :class:`~retrieval.search.RetrievalIndex` bundle built with **the same
encoder** (so cosine scores are comparable across shards); the distributed pipeline builds one
shard per worker task (:mod:`training.distributed`). The sharded directory holds ``shards.json``
(the shard folders, the encoder fingerprint, row counts) and ``shard-NNN/`` bundles.

Merging: ``dense`` merges the shards' hits by cosine similarity; ``hybrid`` merges the dense and
the sparse hits separately by score and fuses the two merged rankings by reciprocal rank, as
:meth:`RetrievalIndex.search` does within one bundle (IDF statistics are per shard, so hybrid
ranking across shards is close to, not identical with, one big index). Province/court spread is
applied again on the merged list with the same caps. Filters are those of ``RetrievalIndex``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.cohort import CohortStats, cohort_stats
from retrieval.fusion import fuse
from retrieval.index import IndexFormatError, write_json
from retrieval.search import (
    Mode,
    ProvinceScope,
    RetrievalIndex,
    RetrievalQueryError,
    SimilarCase,
    guidelines_for,
)
from sentencing.case import Case, Defendant
from sentencing.config import Settings, load_settings
from sentencing.guideline import GuidelineResult

MANIFEST = "shards.json"
FORMAT_VERSION = 1


def shard_name(i: int) -> str:
    return f"shard-{i:03d}"


def write_shard_manifest(directory: Path, shard_dirs: Sequence[str]) -> dict[str, Any]:
    """Record complete shard bundles under ``directory`` (atomically); checks they share one encoder."""
    directory = Path(directory)
    fingerprints, rows = set(), []
    for name in shard_dirs:
        path = directory / name / "manifest.json"
        if not path.is_file():
            raise IndexFormatError(f"shard {name}: {path} is missing (the shard was not built completely)")
        m = json.loads(path.read_text(encoding="utf-8"))
        fingerprints.add(m["encoder_fingerprint"])
        rows.append(int(m["rows"]))
    if len(fingerprints) > 1:
        raise IndexFormatError(f"{directory}: the shards were built with different encoders: scores would not compare")
    manifest = {
        "format_version": FORMAT_VERSION,
        "shards": list(shard_dirs),
        "rows": rows,
        "total_rows": sum(rows),
        "encoder_fingerprint": fingerprints.pop() if fingerprints else None,
        "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(directory / MANIFEST, manifest)
    return manifest


class ShardedIndex:
    """Several RetrievalIndex shards searched as one (threads: FAISS releases the GIL)."""

    def __init__(self, directory: Path, shards: list[RetrievalIndex], manifest: dict[str, Any],
                 settings: Settings) -> None:
        if not shards:
            raise IndexFormatError(f"{directory}: a sharded index needs at least one shard")
        self.directory = directory
        self.shards = shards
        self.manifest = manifest
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=min(len(shards), os.cpu_count() or 1, 16))

    @staticmethod
    def is_sharded(directory: Path) -> bool:
        return (Path(directory) / MANIFEST).is_file()

    @classmethod
    def load(cls, directory: Path, *, settings: Settings | None = None, mmap: bool = True) -> ShardedIndex:
        settings = settings or load_settings()
        directory = Path(directory)
        path = directory / MANIFEST
        if not path.is_file():
            raise IndexFormatError(f"{directory} is not a sharded index: {MANIFEST} is missing")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise IndexFormatError(f"{path}: not valid JSON ({e})") from e
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(f"{path}: format_version {manifest.get('format_version')!r}, "
                                   f"this code reads {FORMAT_VERSION}")
        names = manifest.get("shards")
        if not isinstance(names, list) or not names:
            raise IndexFormatError(f"{path}: field 'shards' must be a non-empty list of shard folders")
        shards = [RetrievalIndex.load(directory / name, settings=settings, mmap=mmap) for name in names]
        if len({s.encoder.fingerprint for s in shards}) > 1:
            raise IndexFormatError(f"{directory}: the shards were built with different encoders")
        return cls(directory, shards, manifest, settings)

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)

    def info(self) -> dict[str, Any]:
        return {**self.manifest, "live_rows": [s.info().get("live_rows") for s in self.shards]}

    # ----------------------------------------------------------------------------- updates

    def add(self, cases: Iterable[Case]) -> int:
        """Index new cases in the smallest shard (no rebuild); a case already in any shard is replaced."""
        cases = list(cases)
        ids = {c.id for c in cases}
        for shard in self.shards:
            shard.delete(ids)
        target = min(self.shards, key=len)
        added = target.add(cases)
        for shard in self.shards:
            shard.save()
        names = [Path(s.directory).name for s in self.shards]
        self.manifest = write_shard_manifest(self.directory, names)
        return added

    # ----------------------------------------------------------------------------- queries

    def _fan_out(self, mode: Mode, case: Case, defendant: Defendant, k: int,
                 filters: dict[str, Any]) -> list[list[SimilarCase]]:
        futures = [self._pool.submit(s.search, case, defendant, k=k, mode=mode, **filters) for s in self.shards]
        return [f.result() for f in futures]

    def search(
        self,
        case: Case,
        defendant: Defendant,
        *,
        k: int = 10,
        province_scope: ProvinceScope = "other",
        same_charge: bool = True,
        same_tier: bool = False,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        mode: Mode = "dense",
        guideline: GuidelineResult | None = None,
    ) -> list[SimilarCase]:
        """The k most similar past defendants over all shards; filters as :meth:`RetrievalIndex.search`."""
        if not 1 <= k <= 100:
            raise RetrievalQueryError(f"k must be between 1 and 100, not {k}")
        if mode not in ("dense", "hybrid"):
            raise RetrievalQueryError(
                f"mode must be 'dense' or 'hybrid' on a sharded index, not {mode!r} "
                "(sparse scores alone do not compare across shards)"
            )
        filters = {"province_scope": province_scope, "same_charge": same_charge, "same_tier": same_tier,
                   "date_from": date_from, "date_to": date_to, "guideline": guideline}
        per_shard = min(100, max(3 * k, 10))
        dense = merge_by_score(self._fan_out("dense", case, defendant, per_shard, filters))
        if mode == "dense":
            return self.spread(dense, k)
        if any(s.sparse is None for s in self.shards):
            raise RetrievalQueryError("mode='hybrid': a shard has no sparse side; use mode='dense'")
        sparse = merge_by_score(self._fan_out("sparse", case, defendant, per_shard, filters))
        # Fused as within one bundle (retrieval.fusion), over (case, defendant) keys numbered in order of appearance.
        number: dict[tuple[str, str], int] = {}
        hits: list[SimilarCase] = []
        rankings: list[np.ndarray] = []
        for ranking in (dense, sparse):
            ids = []
            for hit in ranking:
                key = (hit.case_id, hit.defendant)
                if key not in number:
                    number[key] = len(hits)
                    hits.append(hit)
                ids.append(number[key])
            rankings.append(np.asarray(ids, np.int64))
        ranked, scores = fuse(rankings[0], rankings[1], dense_weight=self.settings.retrieval_dense_weight)
        dense_rank = {int(i): r for r, i in enumerate(rankings[0], 1)}
        sparse_rank = {int(i): r for r, i in enumerate(rankings[1], 1)}
        merged = [hits[i].model_copy(update={"score": float(score), "dense_rank": dense_rank.get(i),
                                             "sparse_rank": sparse_rank.get(i)})
                  for i, score in zip(ranked.tolist(), scores.tolist(), strict=True)]
        return self.spread(merged, k)

    def search_many(
        self,
        case: Case,
        defendants: Sequence[Defendant],
        *,
        k: int = 10,
        province_scope: ProvinceScope = "other",
        same_charge: bool = True,
        same_tier: bool = False,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        mode: Mode = "dense",
        guidelines: Sequence[GuidelineResult | None] | None = None,
    ) -> list[list[SimilarCase]]:
        """:meth:`search` for each defendant (as :meth:`RetrievalIndex.search_many`, which the
        service calls): each search already fans out over the shards in parallel."""
        return [
            self.search(case, d, k=k, province_scope=province_scope, same_charge=same_charge, same_tier=same_tier,
                        date_from=date_from, date_to=date_to, mode=mode, guideline=g)
            for d, g in zip(defendants, guidelines_for(defendants, guidelines), strict=True)
        ]

    def cohort(
        self,
        case: Case,
        defendant: Defendant,
        *,
        province_scope: ProvinceScope = "any",
        guideline: GuidelineResult | None = None,
    ) -> CohortStats:
        """The cohort over all shards, exactly as one index holding every row would report it.

        Each shard counts its members by (province, non-custodial, term); criteria are dropped on
        the sum of the shards' sizes and the statistics are read off the sum of their counts.
        """
        profile = self.shards[0].profile(case, defendant, guideline)  # the profile reads no index
        queries = [s.cohort_query(case, profile, province_scope) for s in self.shards]
        return cohort_stats([q for q in queries if q is not None], profile, scope=province_scope,
                            min_n=self.settings.cohort_min_n)

    def indexed(self, case_id: str) -> bool:
        """Whether rows of this case are in any shard."""
        return any(s.indexed(case_id) for s in self.shards)

    def spread(self, ranked: list[SimilarCase], k: int) -> list[SimilarCase]:
        """The same province/court caps as one bundle's spread, applied to the merged list."""
        per_province: Counter[str] = Counter()
        per_court: Counter[str] = Counter()
        chosen: list[SimilarCase] = []
        for hit in ranked:
            if hit.province is not None and per_province[hit.province] >= self.settings.retrieval_max_per_province:
                continue
            if hit.court is not None and per_court[hit.court] >= self.settings.retrieval_max_per_court:
                continue
            chosen.append(hit)
            if hit.province is not None:
                per_province[hit.province] += 1
            if hit.court is not None:
                per_court[hit.court] += 1
            if len(chosen) == k:
                return chosen
        taken = {id(h) for h in chosen}
        chosen.extend(h for h in ranked if id(h) not in taken)
        return chosen[:k]


def merge_by_score(results: list[list[SimilarCase]]) -> list[SimilarCase]:
    """Hits of all shards, best score first (ties by case id, then defendant, for a stable order)."""
    merged = [hit for hits in results for hit in hits]
    merged.sort(key=lambda h: (-h.score, h.case_id, h.defendant))
    return merged


def open_index(directory: Path, *, settings: Settings | None = None,
               mmap: bool = True) -> RetrievalIndex | ShardedIndex:
    """A retrieval bundle or a sharded one, whichever ``directory`` holds."""
    if ShardedIndex.is_sharded(directory):
        return ShardedIndex.load(directory, settings=settings, mmap=mmap)
    return RetrievalIndex.load(directory, settings=settings, mmap=mmap)
