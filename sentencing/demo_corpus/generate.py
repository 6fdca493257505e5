"""The generator: draft → sentence → court → document, one seeded case at a time, streamed.

Case ``i`` of seed ``s`` depends on nothing but ``(s, i)``: its own ``random.Random`` is seeded
from both, so a corpus is byte-identical for a seed, any prefix of it is the smaller corpus, and a
range of cases can be generated apart (``start``) for sharding a million-case run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sentencing.case import Case, ChargeSentence, CourtLevel, Defendant
from sentencing.case import Court as CourtModel
from sentencing.charges import ChargeCatalogue, default_catalogue
from sentencing.demo_corpus.outcome import Guideline, sentence_case
from sentencing.demo_corpus.people import Weighted, between
from sentencing.demo_corpus.render import Rendered, case_number_of, render
from sentencing.demo_corpus.scenario import Draft, draw
from sentencing.demo_corpus.world import World, default_world
from sentencing.sentence import SentenceKind

SOURCE = "synthetic"
_CAPITAL = (SentenceKind.LIFE, SentenceKind.DEATH_SUSPENDED, SentenceKind.DEATH)


class DemoCorpusError(ValueError):
    """Bad arguments to the generator; the message names the argument."""


def case_id(seed: int, index: int) -> str:
    return f"demo-{seed}-{index:07d}"


def _check(n: int, seed: int, start: int) -> None:
    for name, value in (("n", n), ("seed", seed), ("start", start)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DemoCorpusError(f"{name} must be an integer, got {value!r}")
        if value < 0:
            raise DemoCorpusError(f"{name} must be at least 0, got {value}")


def _generate(
    n: int,
    seed: int,
    start: int = 0,
    world: World | None = None,
    guideline: Guideline | None = None,
) -> Iterator[tuple[Draft, Rendered]]:
    """Drafted, sentenced and rendered cases; ``guideline`` may be shared to reuse its memo."""
    _check(n, seed, start)
    world = world or default_world()
    guideline = guideline or Guideline(default_catalogue())
    catalogue = guideline.catalogue
    charge_pick = Weighted([(c, c.weight) for c in world.charges])
    minimum = _minimum_amounts(world, catalogue)
    for index in range(start, start + n):
        rng = random.Random((seed << 32) + index)
        draft = draw(world, rng, index, charge_pick, minimum)
        sentence_case(draft, guideline)
        capital = any(p.sentence is not None and p.sentence.kind in _CAPITAL for p in draft.defendants)
        if capital:  # cases that may end in 无期徒刑 or 死刑 are tried by intermediate courts
            courts = draft.province.intermediate_courts
            draft.serial = between(rng, 1, 160)
        else:
            courts = draft.province.basic_courts
            draft.serial = between(rng, 1, 1600)
        draft.court = courts[int(rng.random() * len(courts))]
        yield draft, render(draft)


def _minimum_amounts(world: World, catalogue: ChargeCatalogue) -> Callable[[str, str], float | None]:
    """The province's 数额较大 threshold of each staged charge (from the charge catalogue)."""
    table: dict[tuple[str, str], float] = {}
    for profile in world.charges:
        spec = catalogue.resolve(profile.name)
        if spec is None or "数额较大" not in spec.thresholds:
            continue
        for p in world.provinces:
            code = p.province.code
            table[(code, profile.name)] = catalogue.threshold(spec, "数额较大", code).value

    def minimum(province: str, charge: str) -> float | None:
        return table.get((province, charge))

    return minimum


def document_of(seed: int, draft: Draft, rendered: Rendered) -> dict:
    """A JuDGE-format record (``text_id``, ``text``, ``la``, ``fd``), marked synthetic, with its province."""
    return {
        "text_id": case_id(seed, draft.index),
        "text": rendered.facts,
        "la": rendered.articles,
        "fd": rendered.document,
        "synthetic": True,
        "province": draft.province.province.code,
    }


def case_of(seed: int, draft: Draft, rendered: Rendered) -> Case:
    """The ground truth behind a document: what a parser must read back from it."""
    court = draft.court
    assert court is not None
    defendants: list[Defendant] = []
    for p in draft.defendants:
        d = p.defendant()
        d.sentence = p.sentence
        if p.charge_sentences:
            d.charge_sentences = [
                ChargeSentence(charge=o.profile.name, sentence=s)
                for o, s in zip(p.offences, p.charge_sentences, strict=True)
            ]
        defendants.append(d)
    return Case(
        id=f"synthetic:{case_id(seed, draft.index)}",  # the id the judge importer gives it
        source=SOURCE,
        synthetic=True,
        case_number=case_number_of(draft),
        court=CourtModel(
            name=court.name,
            province=court.province.code,
            city=court.city,
            level=CourtLevel.INTERMEDIATE if court.intermediate else CourtLevel.BASIC,
        ),
        province=court.province.code,
        date=draft.judged,
        facts=rendered.facts_clean,
        reasoning=rendered.reasoning,
        judgment=rendered.judgment,
        defendants=defendants,
    )


def generate_documents(n: int, seed: int, *, start: int = 0) -> Iterator[dict]:
    """``n`` synthetic judgments as JuDGE records (see :func:`document_of`), cases ``start…start+n−1``."""
    for draft, rendered in _generate(n, seed, start):
        yield document_of(seed, draft, rendered)


def generate_cases(n: int, seed: int, *, start: int = 0) -> Iterator[Case]:
    """The ground-truth cases of :func:`generate_documents` (same ``n``, ``seed``, ``start``), in order."""
    for draft, rendered in _generate(n, seed, start):
        yield case_of(seed, draft, rendered)


def generate_pairs(n: int, seed: int, *, start: int = 0) -> Iterator[tuple[dict, Case]]:
    """Each document with its ground truth, generated once (for round-trip checks)."""
    for draft, rendered in _generate(n, seed, start):
        yield document_of(seed, draft, rendered), case_of(seed, draft, rendered)


_SHARD = 2000


def _lines(n: int, seed: int, start: int) -> Iterator[str]:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for doc in generate_documents(n, seed, start=start):
        yield dumps(doc) + "\n"


def _shard(job: tuple[int, int, int]) -> str:
    """One shard of a parallel run, as text (workers share nothing but ``(seed, index)``)."""
    n, seed, start = job
    return "".join(_lines(n, seed, start))


def write_corpus(path: str | Path, n: int, seed: int, *, start: int = 0, workers: int = 1) -> int:
    """Stream ``n`` documents as JSON lines to ``path``; returns the number written.

    The file appears only when complete: it is written beside ``path`` and renamed into place, so a
    failure or interruption leaves any earlier corpus at ``path`` untouched. ``workers`` > 1
    generates shards of cases in that many processes and writes them in order: the same bytes.
    """
    _check(n, seed, start)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DemoCorpusError(f"workers must be a whole number of at least 1, got {workers!r}")
    target = Path(path)
    if target.is_dir():
        raise DemoCorpusError(f"out: {target} is a directory")
    if not target.parent.exists():
        raise DemoCorpusError(f"out: folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a corpus is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            if workers == 1 or n < 2:
                for line in _lines(n, seed, start):
                    out.write(line)
            else:
                size = min(_SHARD, -(-n // workers))
                jobs = [(min(size, start + n - i), seed, i) for i in range(start, start + n, size)]
                with multiprocessing.get_context("spawn").Pool(workers) as pool:
                    for text in pool.imap(_shard, jobs):
                        out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
