"""Retrieval metrics through pytrec_eval, named as mteb and vidore-benchmark name them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytrec_eval

CUTOFFS = (1, 3, 5, 10, 20, 50, 100)
#: The headline number, as on the ViDoRe leaderboard.
PRIMARY_METRIC = "ndcg_at_5"

Qrels = Mapping[str, Mapping[str, int]]
Ranking = Mapping[str, Sequence[str]]  # query id -> corpus ids, best first


def evaluate(qrels: Qrels, ranking: Ranking, cutoffs: Sequence[int] = CUTOFFS) -> dict[str, dict[str, float]]:
    """Per-query metrics: ndcg_at_k, map_at_k, recall_at_k, precision_at_k, mrr_at_k.

    Rankings are given as ordered lists and turned into strictly decreasing scores, so
    ties never reach trec_eval (which would break them by document id on its own).
    Queries without relevance judgements are left out, as trec_eval does.
    """
    cuts = ",".join(map(str, cutoffs))
    evaluator = pytrec_eval.RelevanceEvaluator(
        {q: dict(r) for q, r in qrels.items()},
        {f"ndcg_cut.{cuts}", f"map_cut.{cuts}", f"recall.{cuts}", f"P.{cuts}"})
    run = {q: {doc: float(len(docs) - i) for i, doc in enumerate(docs)} for q, docs in ranking.items() if q in qrels}
    raw = evaluator.evaluate(run)
    out: dict[str, dict[str, float]] = {}
    for q, values in raw.items():
        metrics = {}
        for k in cutoffs:
            metrics[f"ndcg_at_{k}"] = values[f"ndcg_cut_{k}"]
            metrics[f"map_at_{k}"] = values[f"map_cut_{k}"]
            metrics[f"recall_at_{k}"] = values[f"recall_{k}"]
            metrics[f"precision_at_{k}"] = values[f"P_{k}"]
            metrics[f"mrr_at_{k}"] = _reciprocal_rank(ranking[q][:k], qrels[q])
        out[q] = metrics
    return out


def _reciprocal_rank(docs: Sequence[str], relevant: Mapping[str, int]) -> float:
    return next((1.0 / (i + 1) for i, doc in enumerate(docs) if relevant.get(doc, 0) > 0), 0.0)


def mean(per_query: Mapping[str, Mapping[str, float]], queries: Sequence[str] | None = None) -> dict[str, float]:
    """Average of each metric over `queries` (default: all evaluated queries)."""
    chosen = [per_query[q] for q in (queries if queries is not None else per_query) if q in per_query]
    if not chosen:
        return {}
    return {name: sum(m[name] for m in chosen) / len(chosen) for name in chosen[0]}
