"""Demo-corpus generation speed, against baselines measured in the same run.

    .venv/bin/python -m benchmarks.bench_demo_corpus --cases 20000

Prints, for one process (one core), CPU seconds as well as wall seconds (the machine is shared):

* generate: :func:`sentencing.demo_corpus.write_corpus` of ``--cases`` cases to a temporary file,
  with a fresh guideline memo, as ``sentencing demo-corpus`` runs it (the target is ≥ 5,000/s);
* memo hit rate of the guideline calls in that run;
* baseline 1, the generator without the guideline's cost: the same cases again with the memo warm
  (every guideline call a hit), so the difference is what :func:`sentencing.guideline.calculate`
  costs the generator;
* baseline 2, :func:`sentencing.guideline.calculate` alone on the first ``--calls`` defendants of
  the corpus, calls/s;
* the 3,000-case corpus the service builds on first start, seconds;
* with ``--roundtrip N``: the parser (:func:`sentencing.parsing.parse_judgment_document`) on N
  generated documents, the share of defendants whose sentence, charges, role, circumstances,
  quantities and age it reads back exactly as generated.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from sentencing.charges import default_catalogue
from sentencing.demo_corpus import write_corpus
from sentencing.demo_corpus.generate import _generate, document_of
from sentencing.demo_corpus.outcome import Guideline
from sentencing.guideline import calculate

TARGET = 5000.0


def _timed(fn) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--calls", type=int, default=2000, help="defendants for the calculate() baseline")
    parser.add_argument("--roundtrip", type=int, default=0, help="also parse this many documents back")
    args = parser.parse_args(argv)
    n, seed = args.cases, args.seed
    default_catalogue()  # loading the rule set is start-up, not generation

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo.jsonl"
        cpu, wall = _timed(lambda: write_corpus(out, n, seed))
        size = out.stat().st_size
    print(f"generate      {n:>8} cases  cpu {cpu:7.2f} s  wall {wall:7.2f} s  "
          f"{n / cpu:8.0f} cases/s per core  ({size / n / 1024:.1f} KiB/case)")
    print(f"  vs target   {n / cpu / TARGET:.2f}× of {TARGET:,.0f} cases/s")

    guideline = Guideline(default_catalogue())
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def run() -> None:
        with open(os.devnull, "w", encoding="utf-8") as sink:
            for draft, rendered in _generate(n, seed, guideline=guideline):
                sink.write(encode(document_of(seed, draft, rendered)) + "\n")

    run()  # fills the memo (its cost is the 'generate' figure above)
    print(f"  memo        {guideline.hits}/{guideline.calls} guideline calls answered from the memo "
          f"({guideline.hits / max(1, guideline.calls):.0%}) in a fresh run")
    calls_before, hits_before = guideline.calls, guideline.hits
    warm_cpu, warm_wall = _timed(run)
    assert guideline.calls - calls_before == guideline.hits - hits_before, "memo too small for --cases"
    print(f"baseline 1    {n:>8} cases  cpu {warm_cpu:7.2f} s  wall {warm_wall:7.2f} s  "
          f"{n / warm_cpu:8.0f} cases/s per core without the guideline's cost")
    print(f"  guideline share of generation: {1 - warm_cpu / cpu:.0%}")

    defendants = []
    for draft, _ in _generate(max(1, args.calls // 2), seed):
        for person in draft.defendants:
            defendants.append((person.defendant(), draft.province.province.code))
    defendants = defendants[: args.calls]
    from sentencing.case import Case

    stubs = {code: Case(id="bench", province=code) for _, code in defendants}
    calc_cpu, _ = _timed(lambda: [calculate(d, stubs[code]) for d, code in defendants])
    print(f"baseline 2    {len(defendants):>8} calls  cpu {calc_cpu:7.2f} s  "
          f"{len(defendants) / calc_cpu:8.0f} calculate() calls/s per core")

    with tempfile.TemporaryDirectory() as tmp:
        cpu3, wall3 = _timed(lambda: write_corpus(Path(tmp) / "first-start.jsonl", 3000, seed))
    print(f"first start       3000 cases  cpu {cpu3:7.2f} s  wall {wall3:7.2f} s")
    if args.roundtrip:
        roundtrip(args.roundtrip, seed)
    return 0


def roundtrip(n: int, seed: int) -> None:
    from collections import Counter

    from sentencing.case import Defendant
    from sentencing.demo_corpus import generate_pairs
    from sentencing.parsing import parse_judgment_document

    def quantities(d: Defendant) -> tuple:
        q = d.quantities
        return (
            q.amount_yuan and q.amount_yuan.value,
            sorted((k, m.value) for k, m in q.drug_grams.items()),
            sorted((i.grade.value, i.count) for i in q.injuries),
            q.occurrences and q.occurrences.value,
            q.deaths and q.deaths.value,
            q.blood_alcohol_mg_per_100ml and q.blood_alcohol_mg_per_100ml.value,
        )

    same: Counter[str] = Counter()
    total = 0
    for doc, truth in generate_pairs(n, seed):
        parsed = parse_judgment_document(doc["fd"], case_id=doc["text_id"], source="synthetic", synthetic=True)
        by_name = {d.name: d for d in parsed.defendants}
        for t in truth.defendants:
            total += 1
            p = by_name.get(t.name)
            if p is None:
                continue
            same["sentence"] += p.sentence == t.sentence
            same["charges"] += p.charge_names == t.charge_names
            same["role"] += p.role is t.role
            same["circumstances"] += p.circumstance_codes == t.circumstance_codes
            same["quantities"] += quantities(p) == quantities(t)
            same["age"] += p.age == t.age
    for field in ("sentence", "charges", "role", "circumstances", "quantities", "age"):
        print(f"roundtrip     {field:<14} {same[field]:>6}/{total} defendants of {n} documents "
              f"({same[field] / total:.2%}) read back exactly")


if __name__ == "__main__":
    raise SystemExit(main())
