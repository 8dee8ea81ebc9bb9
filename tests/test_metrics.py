"""Tests for recsys_kit.metrics: hand-computed cases, edge cases, agreement with trec_eval/ranx."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys_kit.metrics import (
    catalog_coverage,
    evaluate,
    intra_list_diversity,
    novelty,
    parse_metric,
)

# pytrec_eval measure -> our metric name (definitions that match exactly)
TREC_MEASURES = {
    "P_5": "precision@5",
    "P_10": "precision@10",
    "recall_10": "recall@10",
    "ndcg_cut_10": "ndcg@10",
    "ndcg": "ndcg",
    "map": "map",
    "map_cut_10": "map@10",
    "recip_rank": "mrr",
}
RANX_METRICS = [
    "precision@10",
    "recall@10",
    "f1@10",
    "hit_rate@10",
    "mrr",
    "mrr@5",
    "map",
    "map@10",
    "ndcg@10",
    "ndcg",
]


def _random_case(seed: int, n_q: int = 25, n_docs: int = 60):
    """Random graded qrels and a run with scores distinct even in float32."""
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for q in range(n_q):
        qid = f"q{q}"
        judged = rng.choice(n_docs, size=rng.integers(1, 20), replace=False)
        qrels[qid] = {f"d{d}": int(rng.integers(0, 4)) for d in judged}
        retrieved = rng.choice(n_docs, size=rng.integers(1, 40), replace=False)
        scores = rng.permutation(len(retrieved)) * 0.25 + 1.0  # distinct, exact in float32
        run[qid] = {f"d{d}": float(s) for d, s in zip(retrieved, scores)}
    return qrels, run


def test_hand_computed_case():
    qrels = {"q": {"a": 3, "b": 2, "c": 0, "d": 1}}
    run = {"q": {"x": 0.9, "a": 0.8, "c": 0.7, "b": 0.6}}  # ranks: x, a, c, b
    res = evaluate(
        qrels,
        run,
        ["precision@2", "recall@4", "f1@4", "hit@1", "hit_rate@2", "mrr", "map", "ndcg@3", "ndcg"],
    )
    assert res["precision@2"] == pytest.approx(0.5)
    assert res["recall@4"] == pytest.approx(2 / 3)  # R = 3 (a, b, d)
    p4, r4 = 2 / 4, 2 / 3
    assert res["f1@4"] == pytest.approx(2 * p4 * r4 / (p4 + r4))
    assert res["hit@1"] == 0.0 and res["hit_rate@2"] == 1.0
    assert res["mrr"] == pytest.approx(0.5)
    assert res["map"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    dcg3 = 3 / math.log2(3)
    idcg3 = 3 + 2 / math.log2(3) + 1 / 2
    assert res["ndcg@3"] == pytest.approx(dcg3 / idcg3)
    dcg = 3 / math.log2(3) + 2 / math.log2(5)
    assert res["ndcg"] == pytest.approx(dcg / idcg3)  # ideal uses all 3 relevant docs


def test_ties_broken_by_doc_id_ascending():
    qrels = {"q": {"b": 1}}
    run = {"q": {"b": 1.0, "a": 1.0}}  # tie: "a" ranks first
    assert evaluate(qrels, run, "mrr")["mrr"] == pytest.approx(0.5)
    assert evaluate({"q": {"a": 1}}, run, "mrr")["mrr"] == 1.0


def test_edge_cases():
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}, "q3": {"c": 2}}
    run = {"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q_extra": {"a": 5.0}}  # q3 absent
    res = evaluate(qrels, run, ["ndcg@10", "recall@10", "precision@10", "map"], per_query=True)
    assert set(res["ndcg@10"]) == {"q1", "q2", "q3"}  # run-only queries are ignored
    assert res["ndcg@10"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}  # no relevant / absent -> 0
    assert res["precision@10"]["q1"] == pytest.approx(0.1)  # k larger than the list
    means = evaluate(qrels, run, ["ndcg@10", "map"])
    assert means == {"ndcg@10": pytest.approx(1 / 3), "map": pytest.approx(1 / 3)}
    empty = evaluate(qrels, {}, ["ndcg@10", "mrr", "precision"])
    assert empty == {"ndcg@10": 0.0, "mrr": 0.0, "precision": 0.0}
    assert evaluate({"q": {"a": 1}}, {"q": {}}, "recall@5")["recall@5"] == 0.0
    # rel_threshold=2: grade 1 is no longer relevant, and contributes no gain
    r = evaluate({"q": {"a": 1, "b": 2}}, {"q": {"a": 2.0, "b": 1.0}}, "mrr", rel_threshold=2)
    assert r["mrr"] == 0.5


def test_bad_metric_names_and_inputs():
    for bad in ("ndcg@0", "foo@10", "ndcg@x", "", "precision@-1"):
        with pytest.raises(ValueError, match="metric|cut-off"):
            evaluate({"q": {"a": 1}}, {"q": {"a": 1.0}}, bad)
    with pytest.raises(ValueError, match="qrels is empty"):
        evaluate({}, {"q": {"a": 1.0}}, "mrr")
    with pytest.raises(ValueError, match="rel_threshold"):
        evaluate({"q": {"a": 1}}, {"q": {"a": 1.0}}, "mrr", rel_threshold=0)
    with pytest.raises(TypeError, match="dicts"):
        evaluate([("q", "a", 1)], {}, "mrr")  # type: ignore[arg-type]
    assert parse_metric("hit@10") == ("hit_rate", 10)
    assert parse_metric("MRR") == ("mrr", None)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pytrec_eval(seed):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _random_case(seed)
    trec = pytrec_eval.RelevanceEvaluator(qrels, set(TREC_MEASURES)).evaluate(run)
    ours = evaluate(qrels, run, list(TREC_MEASURES.values()), per_query=True)
    for measure, name in TREC_MEASURES.items():
        for qid in qrels:
            # trec_eval drops queries without any relevant doc; ours score 0 there
            want = trec[qid][measure] if qid in trec else 0.0
            assert ours[name][qid] == pytest.approx(want, abs=1e-9), (measure, qid)


@pytest.mark.parametrize("seed", [0, 3])
def test_agrees_with_ranx(seed):
    ranx = pytest.importorskip("ranx")
    qrels, run = _random_case(seed)
    want = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), RANX_METRICS, make_comparable=True)
    got = evaluate(qrels, run, RANX_METRICS)
    for name in RANX_METRICS:
        assert got[name] == pytest.approx(float(want[name]), abs=1e-9), name


def test_catalog_coverage():
    assert catalog_coverage({"u1": [1, 2, 3], "u2": [3, 4]}, catalog_size=8) == 0.5
    with pytest.raises(ValueError, match="catalog_size"):
        catalog_coverage([[1]], 0)
    with pytest.raises(ValueError, match="exceed"):
        catalog_coverage([[1, 2, 3]], 2)


def test_intra_list_diversity():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [2.0, 0.0]])
    assert intra_list_diversity([[0, 3]], emb) == pytest.approx(0.0)  # same direction
    assert intra_list_diversity([[0, 2]], emb) == pytest.approx(2.0)  # opposite
    # pairs (0,1): 1, (0,2): 2, (1,2): 1 -> mean 4/3
    assert intra_list_diversity({"u": [0, 1, 2]}, emb) == pytest.approx(4 / 3)
    as_dict = {f"i{j}": emb[j] for j in range(4)}
    assert intra_list_diversity([["i0", "i1", "i2"], ["i3"]], as_dict) == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match="2 or more"):
        intra_list_diversity([[0]], emb)


def test_novelty():
    pop = {"a": 50, "b": 25, "c": 0}
    assert novelty([["a", "b"]], pop, n_users=100) == pytest.approx(1.5)
    # p from total counts: a = 50/75, b = 25/75
    want = (-math.log2(50 / 75) - math.log2(25 / 75)) / 2
    assert novelty([["a", "b"]], pop) == pytest.approx(want)
    assert novelty([["c"]], pop, n_users=100) == pytest.approx(math.log2(100))  # count floor 1
