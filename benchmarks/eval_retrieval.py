"""Label-free quality of similar-case retrieval on the real judgments (issue 5).

Every real sentenced defendant (JuDGE judgments + LawBench/CAIL term cases) is a query against
the rest of the real corpus plus the synthetic demo corpus. The encoder is trained k-fold: the
fold's cases are never in its training data (synthetic + the other folds only). For each method —
dense, BM25, TF-IDF (the CAIL2018 baseline style) and hybrid (RRF of dense and BM25), all in the
same run, over the same candidates, with the same province/court spread — it reports:

- charge agreement@10: share of the top-10 neighbours whose principal charge is the query's
  (searching *without* the charge filter, so the ranking alone has to find it);
- CAIL log score ×100 of the median sentence of the top-10 neighbours, without and with the
  same-charge filter (the filter is what the service uses).

Usage:  .venv/bin/python -m benchmarks.eval_retrieval [--synthetic 3000] [--folds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from retrieval.search import RetrievalIndex, train_corpus_encoder
from retrieval.text import case_document, tokenize
from sentencing.config import Settings
from sentencing.demo_corpus import generate_cases
from sentencing.importers import read_cases
from sentencing.metrics import cail_score
from sentencing.sentence import CAIL_DEATH, CAIL_LIFE

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METHODS = ("dense", "sparse", "tfidf", "hybrid")


def median_term(terms: list[int]) -> float:
    """Median CAIL label of neighbours; death or life when most neighbours got it."""
    if not terms:
        return 0.0
    for label in (CAIL_DEATH, CAIL_LIFE):
        if sum(t == label for t in terms) * 2 > len(terms):
            return float(label)
    months = [t for t in terms if t >= 0]
    return float(statistics.median(months)) if months else 0.0


def fold_of(case_id: str, folds: int) -> int:
    return int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % folds


class Tfidf:
    """TF-IDF cosine over the same jieba tokens BM25 uses (rows aligned with the index)."""

    def __init__(self, index: RetrievalIndex) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        assert index.sparse is not None
        self.vectorizer = TfidfVectorizer(analyzer=lambda tokens: tokens, sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(index.sparse.tokens)

    def ranked(self, tokens: list[str], allowed: np.ndarray, n: int) -> list[int]:
        scores = (self.matrix @ self.vectorizer.transform([tokens]).T).toarray().ravel()
        scores[~allowed] = -1.0
        top = np.argpartition(-scores, min(n, len(scores) - 1))[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(r) for r in top if scores[r] > 0]


def evaluate(synthetic_n: int, folds: int, seed: int, k: int) -> None:
    started = time.perf_counter()
    real = list(read_cases("judge", [DATA / "judge" / "judgments.jsonl"]))
    real += list(read_cases("lawbench", [DATA / "lawbench" / "term_prediction.jsonl"]))
    synthetic = list(generate_cases(synthetic_n, seed))
    corpus = synthetic + real
    settings = Settings()
    print(f"real cases {len(real)}, synthetic {len(synthetic)}, folds {folds}, k {k}")
    agree: dict[str, list[float]] = defaultdict(list)
    truth: list[int] = []
    pred: dict[str, list[float]] = defaultdict(list)
    pred_filtered: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as scratch:
        for f in range(folds):
            t0 = time.perf_counter()
            held = [c for c in real if fold_of(c.id, folds) == f]
            train = synthetic + [c for c in real if fold_of(c.id, folds) != f]
            enc_dir = Path(scratch) / f"enc{f}"
            train_corpus_encoder(train, enc_dir, settings)
            index = RetrievalIndex.build(corpus, Path(scratch) / f"idx{f}", encoder_dir=enc_dir, settings=settings)
            tfidf = Tfidf(index)
            charges = np.asarray(index.meta["charge"])
            terms = np.asarray(index.meta["term"])
            n_queries = 0
            for case in held:
                for d in case.defendants:
                    if d.sentence is None or not d.charges:
                        continue
                    n_queries += 1
                    truth.append(d.sentence.term_months)
                    blind = case.before_judgment()
                    qd = blind.defendants[case.defendants.index(d)]
                    profile = index.profile(case, d)
                    qcharge = index.vocab["charges"].get(profile.charge)
                    for method in METHODS:
                        for same_charge in (False, True):
                            if method == "tfidf":
                                allowed = index.allowed(profile, province_scope="any", same_charge=same_charge)
                                ranked = tfidf.ranked(tokenize(case_document(blind, qd)), allowed, 20 * k)
                                ranked = [r for r in ranked if index.case_ids[r] != case.id]
                                rows = index.spread(ranked, k)
                            else:
                                hits = index.search(case, d, k=k, province_scope="any", same_charge=same_charge,
                                                    mode=method)  # type: ignore[arg-type]
                                rows = [index.vocab["charges"].get(h.charges[0]) for h in hits]
                                labels = [h.sentence.term_months for h in hits]
                            if method == "tfidf":
                                labels = [int(terms[r]) for r in rows]
                                rows = [int(charges[r]) for r in rows]
                            estimate = median_term(labels)
                            if same_charge:
                                pred_filtered[method].append(estimate)
                            else:
                                pred[method].append(estimate)
                                agree[method].append(sum(c == qcharge for c in rows) / k)
            print(f"fold {f}: {len(held)} cases, {n_queries} queries, {time.perf_counter() - t0:.1f} s")
            report(truth, agree, pred, pred_filtered)
    print(f"\nqueries (real sentenced defendants): {len(truth)}; total {time.perf_counter() - started:.0f} s")


def report(
    truth: list[int],
    agree: dict[str, list[float]],
    pred: dict[str, list[float]],
    pred_filtered: dict[str, list[float]],
) -> None:
    print(f"after {len(truth)} queries:")
    print(f"{'method':8} {'charge@10':>10} {'CAIL (no filter)':>17} {'CAIL (same charge)':>19}")
    for method in METHODS:
        print(f"{method:8} {np.mean(agree[method]):10.3f} {cail_score(truth, pred[method]):17.1f} "
              f"{cail_score(truth, pred_filtered[method]):19.1f}")
    best_agree = max(np.mean(agree[m]) for m in ("dense", "sparse", "tfidf"))
    best_cail = max(cail_score(truth, pred_filtered[m]) for m in ("dense", "sparse", "tfidf"))
    print(f"hybrid vs best single: charge@10 {np.mean(agree['hybrid']) / best_agree:.3f}×, "
          f"CAIL (same charge) {cail_score(truth, pred_filtered['hybrid']) / best_cail:.3f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=3000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    evaluate(args.synthetic, args.folds, args.seed, args.k)


if __name__ == "__main__":
    main()
