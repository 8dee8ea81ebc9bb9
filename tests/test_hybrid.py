"""Tests for recsys_kit.hybrid: RRF, weighted fusion and the run converter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_kit.hybrid import ranked_docs, rrf, to_run, weighted_fusion


def test_rrf_hand_computed():
    a = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}
    b = {"q1": {"d3": 0.9, "d1": 0.5}, "q2": {"d9": 1.0}}
    fused = rrf([a, b], k=60)
    assert fused["q1"]["d1"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["q1"]["d2"] == pytest.approx(1 / 62)
    assert fused["q1"]["d3"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["q2"] == {"d9": pytest.approx(1 / 61)}  # query present in one run only
    assert ranked_docs(fused["q1"]) == ["d1", "d3", "d2"]
    weighted = rrf([a, b], k=0, weights=[2.0, 0.0])
    assert weighted["q1"]["d2"] == pytest.approx(2 / 2)


def test_rrf_ignores_score_scale_and_breaks_ties_by_doc_id():
    a = {"q": {"x": 1000.0, "y": 999.0}}
    b = {"q": {"x": 0.001, "y": 0.0009}}
    assert rrf([a])["q"] == pytest.approx(rrf([b])["q"])
    tied = rrf([{"q": {"b": 1.0, "a": 1.0}}], k=1)["q"]
    assert tied == {"a": 0.5, "b": pytest.approx(1 / 3)}  # equal scores -> "a" ranked first


def test_weighted_fusion_normalizations():
    a = {"q": {"d1": 10.0, "d2": 5.0, "d3": 0.0}}
    b = {"q": {"d2": 1.0, "d4": 3.0}}
    mm = weighted_fusion([a, b], [0.5, 0.5], "minmax")["q"]
    assert mm == pytest.approx({"d1": 0.5, "d2": 0.25, "d3": 0.0, "d4": 0.5})
    z = weighted_fusion([a, b], [1.0, 1.0], "zscore")["q"]
    sd = np.std([10.0, 5.0, 0.0])
    assert z["d1"] == pytest.approx(5.0 / sd)
    assert z["d2"] == pytest.approx(0.0 + (-1.0))
    raw = weighted_fusion([a, b], [1.0, 2.0], None)["q"]
    assert raw == pytest.approx({"d1": 10.0, "d2": 7.0, "d3": 0.0, "d4": 6.0})
    const = weighted_fusion([{"q": {"a": 2.0, "b": 2.0}}], normalization="minmax")["q"]
    assert const == {"a": 1.0, "b": 1.0}


def test_fusion_errors():
    run = {"q": {"a": 1.0}}
    with pytest.raises(ValueError, match="one weight per run"):
        weighted_fusion([run, run], [1.0])
    with pytest.raises(ValueError, match="unknown normalization"):
        weighted_fusion([run], normalization="softmax")
    with pytest.raises(ValueError, match="at least one run"):
        rrf([])
    with pytest.raises(TypeError, match="list of runs"):
        rrf(run)  # type: ignore[arg-type]


def test_to_run_numpy_and_torch():
    scores = np.array([[0.9, 0.2], [0.8, 0.1]], dtype=np.float32)
    idx = np.array([[2, 0], [1, -1]])
    run = to_run(["q1", "q2"], scores, idx, ["a", "b", "c"])
    assert run == {"q1": {"c": pytest.approx(0.9), "a": pytest.approx(0.2)},
                   "q2": {"b": pytest.approx(0.8)}}  # fmt: skip
    run_t = to_run(["q1", "q2"], torch.from_numpy(scores), torch.from_numpy(idx), "abc")
    assert run_t == run
    with pytest.raises(ValueError, match="query ids"):
        to_run(["q1"], scores, idx, ["a", "b", "c"])
    with pytest.raises(ValueError, match="out of range"):
        to_run(["q1", "q2"], scores, idx + 5, ["a", "b", "c"])
    with pytest.raises(ValueError, match="n_queries, k"):
        to_run(["q1", "q2"], scores, idx[:, :1], ["a", "b", "c"])
