"""The run type's one home: the tie rule, the builders and the names re-exported elsewhere."""

import numpy as np
import pandas as pd
import pytest

from recsys_kit import abtest, hybrid, metrics, runs, scoring


def test_tie_rule_is_score_desc_then_id_asc():
    assert runs.ranked_docs({"b": 1.0, "a": 1.0, "c": 2.0, "d": 0.5}) == ["c", "a", "b", "d"]
    # mixed id types compare by their string forms, never raise
    assert runs.ranked_docs({2: 1.0, "10": 1.0, "a": 3.0}) == ["a", "10", 2]


def test_one_tie_rule_everywhere():
    """metrics, hybrid and abtest rank a run with ties the same way (the runs module's rule)."""
    rng = np.random.default_rng(0)
    docs = {f"d{i:02d}": float(rng.integers(0, 3)) for i in range(30)}
    order = runs.ranked_docs(docs)
    assert hybrid.ranked_docs is runs.ranked_docs
    assert list(abtest.ranked_ids({"q": docs}, "q")) == order
    # metrics: mrr@1 of a single relevant doc is 1 exactly when it ranks first
    for d in docs:
        got = metrics.evaluate({"q": {d: 1}}, {"q": docs}, "mrr@1")["mrr@1"]
        assert got == (1.0 if d == order[0] else 0.0)


def test_to_run_skips_negative_indices_and_checks_shapes():
    run = runs.to_run(["q"], np.array([[0.9, 0.5, 0.0]]), np.array([[1, 0, -1]]), ["a", "b"])
    assert run == {"q": {"b": 0.9, "a": 0.5}}
    with pytest.raises(ValueError, match="out of range"):
        runs.to_run(["q"], np.array([[0.9]]), np.array([[5]]), ["a"])
    with pytest.raises(ValueError, match="query ids"):
        runs.to_run(["q", "r"], np.array([[0.9]]), np.array([[0]]), ["a"])


def test_drop_zero_scores():
    assert runs.drop_zero_scores({"q": {"a": 1.5, "b": 0.0}, "r": {"c": 0.0}}) == {
        "q": {"a": 1.5},
        "r": {},
    }


def test_scores_to_run_and_reexports():
    pairs = pd.DataFrame({"query_id": ["q", "q", "r"], "product_id": ["a", "b", "a"]})
    assert runs.scores_to_run(pairs, [0.5, 0.25, 1.0]) == {
        "q": {"a": 0.5, "b": 0.25},
        "r": {"a": 1.0},
    }
    with pytest.raises(ValueError, match="NaN"):
        runs.scores_to_run(pairs, [0.5, np.nan, 1.0])
    assert scoring.scores_to_run is runs.scores_to_run
    assert hybrid.to_run is runs.to_run and hybrid.Run is runs.Run


def test_matrix_to_run_keeps_the_top_k_with_the_tie_rule():
    import torch

    from recsys_kit.runs import matrix_to_run

    s = np.array([[0.1, 0.9, 0.5, 0.9], [0.0, 0.0, 0.0, 0.3]])
    run = matrix_to_run(["q1", "q2"], s, ["a", "b", "c", "d"], k=3)
    assert run == {"q1": {"b": 0.9, "d": 0.9, "c": 0.5}, "q2": {"d": 0.3, "a": 0.0, "b": 0.0}}
    assert list(run["q1"]) == runs.ranked_docs(run["q1"])  # the one tie rule: lower id first
    assert matrix_to_run(["q1", "q2"], torch.tensor(s), list("abcd"), k=9)["q2"] == {
        "d": 0.3, "a": 0.0, "b": 0.0, "c": 0.0
    }  # fmt: skip
    with pytest.raises(ValueError, match="NaN"):
        matrix_to_run(["q"], np.array([[np.nan, 1.0]]), ["a", "b"])
    with pytest.raises(ValueError, match="docs"):
        matrix_to_run(["q"], np.array([[1.0, 1.0]]), ["a"])
