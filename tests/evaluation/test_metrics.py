"""Metrics against numbers worked out by hand on a two-query fixture."""

import math

import pytest

from colretrieve.evaluation.metrics import evaluate, mean

QRELS = {"q1": {"a": 2, "c": 1}, "q2": {"z": 1}}
RANKING = {"q1": ["b", "a", "c", "d"], "q2": ["x", "y", "w"], "q3": ["a"]}  # q3 has no judgements


def test_hand_computed_values() -> None:
    per_query = evaluate(QRELS, RANKING, cutoffs=(1, 3))
    assert set(per_query) == {"q1", "q2"}
    q1 = per_query["q1"]
    # trec_eval's (and so mteb's) gain is the grade itself: DCG@3 = 0/log2(2) + 2/log2(3) + 1/log2(4)
    dcg = 2 / math.log2(3) + 1 / 2
    ideal = 2 + 1 / math.log2(3)
    assert q1["ndcg_at_3"] == pytest.approx(dcg / ideal, abs=1e-4)
    assert q1["ndcg_at_1"] == 0.0
    assert q1["recall_at_1"] == 0.0 and q1["recall_at_3"] == 1.0
    assert q1["precision_at_3"] == pytest.approx(2 / 3, abs=1e-4)
    assert q1["mrr_at_1"] == 0.0 and q1["mrr_at_3"] == 0.5
    assert q1["map_at_3"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-4)  # precision at each hit / relevant
    assert all(v == 0.0 for v in per_query["q2"].values())
    assert mean(per_query)["ndcg_at_3"] == pytest.approx(dcg / ideal / 2, abs=1e-4)
    assert mean(per_query, ["q1"])["mrr_at_3"] == 0.5


def test_list_order_decides_not_trec_evals_tie_breaking() -> None:
    per_query = evaluate({"q": {"a": 1}}, {"q": ["b", "a"]}, cutoffs=(1,))
    assert per_query["q"]["ndcg_at_1"] == 0.0  # "b" is first because we listed it first
