"""Tests for recsys_kit.abtest: click model, simulation, lift CI, z-test, sample size."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from recsys_kit.abtest import (
    PositionBasedClickModel,
    lift_ci,
    sample_size,
    simulate_ab_test,
    two_proportion_ztest,
    ztest,
)

# a small MiniShop-like qrels: each query has one Exact and one Substitute product
QRELS = {f"q{i}": {f"e{i}": 3, f"s{i}": 2, f"i{i}": 0} for i in range(20)}
QUERIES = list(QRELS)


def good(q):
    i = q[1:]
    return [f"e{i}", f"s{i}", f"i{i}", "x1", "x2"]


def bad(q):
    i = q[1:]
    return ["x1", "x2", f"i{i}", f"s{i}", f"e{i}"]


def test_click_model_probabilities():
    cm = PositionBasedClickModel(QRELS, eta=1.0)
    p = cm.probabilities("q0", ["e0", "x", "s0"], k=4)
    assert p.shape == (2, 4)
    np.testing.assert_allclose(p[0], [0.8, 0.05 / 2, 0.45 / 3, 0.0])
    np.testing.assert_allclose(p[1], [0.35, 0.0, 0.15, 0.0])
    with pytest.raises(ValueError, match="eta"):
        PositionBasedClickModel(QRELS, eta=-1)
    with pytest.raises(ValueError, match="grade 0"):
        PositionBasedClickModel(QRELS, attractiveness={3: 0.9})


def test_simulation_shape_determinism_and_rates():
    cm = PositionBasedClickModel(QRELS)
    out = simulate_ab_test(good, good, QUERIES, cm, n_sessions=4000, seed=1)
    assert len(out) == 4000 and set(out["variant"]) == {"A", "B"}
    again = simulate_ab_test(good, good, QUERIES, cm, n_sessions=4000, seed=1)
    assert out.equals(again)
    # expected CTR of "good": 1 - prod(1 - p_click) over the 5 ranks
    pc = cm.probabilities("q0", good("q0"), 10)[0]
    want = 1 - np.prod(1 - pc)
    assert out["clicked"].mean() == pytest.approx(want, abs=0.03)
    assert (out["purchased"] <= out["clicked"]).all()
    assert ((out["first_click_rank"] > 0) == (out["clicks"] > 0)).all()
    # a run dict works as a ranker too
    run = {q: {d: -float(r) for r, d in enumerate(good(q))} for q in QUERIES}
    out_run = simulate_ab_test(run, run, QUERIES, cm, n_sessions=4000, seed=1)
    assert out_run["clicked"].equals(out["clicked"])


def test_equal_arms_ci_covers_zero_most_of_the_time():
    cm = PositionBasedClickModel(QRELS)
    covered = 0
    for seed in range(20):
        out = simulate_ab_test(good, good, QUERIES, cm, n_sessions=2000, seed=seed)
        r = lift_ci(out, "ctr", n_boot=1000, seed=seed)
        covered += r["ci_low"] <= 0 <= r["ci_high"]
    assert covered >= 16  # nominal 95%; 16/20 leaves room for sampling noise


def test_better_ranker_gives_significant_positive_lift():
    cm = PositionBasedClickModel(QRELS)
    out = simulate_ab_test(bad, good, QUERIES, cm, n_sessions=6000, seed=3)
    for metric in ("ctr", "conversion"):
        r = lift_ci(out, metric, n_boot=2000, seed=0)
        assert r["lift"] > 0 and r["ci_low"] > 0, metric
        z, p = ztest(out, metric)
        assert z > 0 and p < 0.01


def test_two_proportion_ztest_hand_computed():
    z, p = two_proportion_ztest(100, 1000, 130, 1000)
    pooled = 230 / 2000
    se = math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert z == pytest.approx(0.03 / se)
    assert p == pytest.approx(2 * (1 - NormalDist().cdf(0.03 / se)))
    assert two_proportion_ztest(0, 10, 0, 10) == (0.0, 1.0)
    with pytest.raises(ValueError):
        two_proportion_ztest(11, 10, 0, 10)


def test_sample_size_formula_and_monotonicity():
    # hand computation: p1 = .10, p2 = .11, pbar = .105
    za, zb = 1.959963984540054, 0.8416212335729143
    num = za * math.sqrt(2 * 0.105 * 0.895) + zb * math.sqrt(0.1 * 0.9 + 0.11 * 0.89)
    assert sample_size(0.10, 0.10) == math.ceil(num**2 / 0.01**2) == 14751
    sizes = [sample_size(0.05, lift) for lift in (0.05, 0.1, 0.2, 0.4)]
    assert sizes == sorted(sizes, reverse=True)  # smaller lifts need more sessions
    assert sample_size(0.05, 0.1, power=0.9) > sample_size(0.05, 0.1, power=0.8)
    assert sample_size(0.05, 0.1, alpha=0.01) > sample_size(0.05, 0.1, alpha=0.05)
    assert sample_size(0.2, -0.1) > 0  # a drop is detectable too
    with pytest.raises(ValueError, match="baseline_rate"):
        sample_size(0.0, 0.1)
    with pytest.raises(ValueError, match="min_detectable_lift"):
        sample_size(0.6, 1.0)


def test_lift_ci_errors():
    cm = PositionBasedClickModel(QRELS)
    out = simulate_ab_test(good, good, QUERIES, cm, n_sessions=500)
    with pytest.raises(ValueError, match="unknown metric"):
        lift_ci(out, "revenue")
    with pytest.raises(ValueError, match="both variants"):
        lift_ci(out[out["variant"] == "A"], "ctr")
    with pytest.raises(ValueError, match="n_boot"):
        lift_ci(out, "ctr", n_boot=10)
