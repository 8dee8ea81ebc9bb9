"""Tests for the bf16-candidates + exact float32 rescoring route of recsys_kit.ranking.topk.

The route must return exactly what the float32 path returns (indices identical, scores within
1e-6), whatever the data: the tests force it with ``precision="bf16"`` (it runs on any CPU,
only slowly without native bf16) and check, through :func:`topk_with_stats`, that the
fallback really is taken when the proof fails and not taken when it holds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_kit import ranking
from recsys_kit.ranking import _bf16_error_bound, _norm_bounds, topk, topk_with_stats


def _both(q, x, k, metric, **kw):
    """(fp32 result, bf16 result, bf16 stats)."""
    s0, i0 = topk(q, x, k, metric, device="cpu", precision="fp32", chunk_size=kw.get("chunk_size"))
    s1, i1, st = topk_with_stats(q, x, k, metric, device="cpu", precision="bf16", **kw)
    return (s0, i0), (s1, i1), st


def _assert_same(a, b) -> None:
    s0, i0 = (np.asarray(t) for t in a)
    s1, i1 = (np.asarray(t) for t in b)
    np.testing.assert_array_equal(i1, i0)
    # 1e-6 absolute near 1 and relative beyond: both paths are float32 dot products, summed in
    # different orders (a few ulps apart; 1 ulp at 30 is 1.9e-6)
    np.testing.assert_allclose(s1, s0, rtol=1e-6, atol=1e-6)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("k", [1, 7, 40])
@pytest.mark.parametrize("chunk_size", [None, 333])
def test_random_data_matches_fp32_without_fallback(metric, k, chunk_size):
    rng = np.random.default_rng(k)
    # 64-d and 3000 items: score gaps near the top are far above the bf16 bound (~0.01).
    q = rng.standard_normal((20, 64)).astype(np.float32) * 1.7
    x = rng.standard_normal((3000, 64)).astype(np.float32) * 0.8
    a, b, st = _both(q, x, k, metric, chunk_size=chunk_size)
    _assert_same(a, b)
    assert st.route == "bf16" and st.n_candidates == k + ranking.default_margin(k)
    # random data: the proof must succeed for most queries, or the route is pointless
    assert st.n_fallback <= 2


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_duplicates_and_exact_ties_fall_back_and_stay_exact(metric):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 32)).astype(np.float32)
    x = np.tile(base, (50, 1))  # each vector 50 times, interleaved: ties everywhere
    q = rng.standard_normal((12, 32)).astype(np.float32)
    for k in (1, 3, 49, 50, 51, 120):
        a, b, st = _both(q, x, k, metric, margin=10, chunk_size=37)
        _assert_same(a, b)
        # k + 10 candidates: unless k = 50 (the k-th is the last copy of the best vector), the
        # k-th and (k+1)-th scores tie, so no query can be proven and all must fall back.
        if k != 50:
            assert st.n_fallback == 12, (k, st)


def test_near_ties_below_bf16_resolution_are_ordered_exactly():
    rng = np.random.default_rng(2)
    d = 48
    q = _unit(rng, 1, d)[0]
    far = _unit(rng, 500, d)
    far -= np.outer(far @ q, q) * 1.2  # pushes their scores to <= ~0 (well below the cluster)
    # 30 items whose scores with q differ by ~2e-4: far below bf16's ~4e-3 resolution at 0.9
    steps = np.arange(30, dtype=np.float32)
    rng.shuffle(steps)
    ortho = _unit(rng, 1, d)[0]
    ortho -= (ortho @ q) * q
    ortho /= np.linalg.norm(ortho)
    cluster = 0.9 * q[None] + np.sqrt(1 - 0.81) * ortho[None] + (2e-4 * steps)[:, None] * q[None]
    x = np.concatenate([far[:250], cluster.astype(np.float32), far[250:]])
    qs = np.stack([q, q * 3.0]).astype(np.float32)
    # the test is adversarial only if bf16 really scrambles the cluster's order
    qt, xt = torch.from_numpy(qs), torch.from_numpy(x)
    approx = (qt.bfloat16() @ xt.bfloat16().T).float()
    exact = qt @ xt.T
    assert not torch.equal(torch.topk(approx, 10).indices, torch.topk(exact, 10).indices)
    for metric in ("dot", "cosine", "l2"):
        a, b, st = _both(qs, x, 10, metric, margin=40)
        _assert_same(a, b)
        if metric != "l2":  # all 30 cluster items are candidates and the rest is far below
            assert st.n_fallback == 0, (metric, st)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_zero_margin_forces_fallback(metric):
    rng = np.random.default_rng(3)
    q = _unit(rng, 9, 64)
    x = _unit(rng, 2000, 64)
    a, b, st = _both(q, x, 5, metric, margin=0)
    _assert_same(a, b)
    # with K = k the k-th exact score must beat the k-th approximate + eps: impossible, so
    # every query is retried with the wider margin (64), where the proof succeeds
    assert st.n_retried == 9 and st.n_candidates == 5
    assert st.n_fallback <= 1
    # without the retry, all fall back to the float32 path, with the same results
    qt, xt = torch.from_numpy(q), torch.from_numpy(x)
    v, i, n_re, n_fb = ranking._topk_bf16(qt, xt, 5, metric, 512, 0, retry=False)
    assert (n_re, n_fb) == (0, 9)
    np.testing.assert_array_equal(i.numpy(), np.asarray(a[1]))


def test_k_equal_n_and_k_1():
    rng = np.random.default_rng(4)
    q = rng.standard_normal((5, 16)).astype(np.float32)
    x = rng.standard_normal((40, 16)).astype(np.float32)
    for metric in ("cosine", "dot", "l2"):
        a, b, st = _both(q, x, 40, metric)
        _assert_same(a, b)
        assert st.n_fallback == 0 and st.n_candidates == 40  # every item is a candidate
        a, b, _ = _both(q, x, 1, metric, margin=3)
        _assert_same(a, b)


def test_torch_inputs_and_other_dtypes():
    rng = np.random.default_rng(5)
    q = rng.standard_normal((8, 32)).astype(np.float32)
    x = rng.standard_normal((900, 32)).astype(np.float32)
    s0, i0 = topk(q, x, 6, "dot", device="cpu", precision="fp32")
    s1, i1 = topk(torch.from_numpy(q), torch.from_numpy(x), 6, "dot", precision="bf16")
    assert isinstance(s1, torch.Tensor) and i1.dtype == torch.int64
    np.testing.assert_array_equal(i1.numpy(), i0)
    np.testing.assert_allclose(s1.numpy(), s0, atol=1e-6, rtol=1e-6)
    _, i2 = topk(q.astype(np.float64), x.astype(np.float64), 6, "dot", precision="bf16")
    np.testing.assert_array_equal(i2, i0)


def _pairwise_bound(q: torch.Tensor, x: torch.Tensor, approx: torch.Tensor, metric: str):
    """eps of :func:`_bf16_error_bound` for every (query, item) pair, each item on its own."""
    qb = q.bfloat16()
    cols = []
    for j in range(x.shape[0]):
        xmax, dmax = _norm_bounds(x[j : j + 1], x[j : j + 1].bfloat16())
        cols.append(_bf16_error_bound(q, qb, xmax, dmax, approx[:, j], metric))
    return torch.stack(cols, dim=1)


def test_error_bound_holds_on_adversarial_rounding():
    """The bound used by the proof must cover the worst rounding we can provoke."""
    d = 384
    u = 2.0**-8
    # every component sits just below a bf16 rounding midpoint, all of the same sign: the
    # input rounding errors add up instead of cancelling (the worst case for the inputs)
    v = np.full(d, 1.0 + 1.49 * u, dtype=np.float32)
    q = torch.from_numpy(np.stack([v, -v, v * 0.37]))
    x = torch.from_numpy(np.stack([v, v * 1.9, -v * 0.51]))
    approx = (q.bfloat16() @ x.bfloat16().T).float()
    err = (approx - q @ x.T).abs()
    limit = _pairwise_bound(q, x, approx, "dot")
    assert (err <= limit).all()
    # and the bound is not vacuous: this input really uses a large part of it
    assert float((err / limit).max()) > 0.4
    # random data (where the measured rounding-error norms make the bound ~2.5x tighter than
    # the worst case), and the l2 form 2 q.x - ||x||^2 on the same data
    rng = np.random.default_rng(6)
    q = torch.from_numpy(rng.standard_normal((64, d)).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((600, d)).astype(np.float32) * 3.0)
    approx = (q.bfloat16() @ x.bfloat16().T).float()
    limit = _pairwise_bound(q, x, approx, "dot")
    assert ((approx - q @ x.T).abs() <= limit).all()
    worst = 2 * u * q.norm(dim=1)[:, None] * x.norm(dim=1)[None]
    assert float((limit / worst).max()) < 0.75
    sq = (x * x).sum(dim=1)
    approx_l2 = approx * 2.0 - sq
    exact_l2 = (q * 2.0) @ x.T - sq
    assert ((approx_l2 - exact_l2).abs() <= _pairwise_bound(q, x, approx_l2, "l2")).all()


def test_auto_route_choice(monkeypatch):
    rng = np.random.default_rng(7)
    q = _unit(rng, 40, 32)
    x = _unit(rng, 20000, 32)
    _, _, st = topk_with_stats(q, x, 5, "dot", device="cpu", precision="fp32")
    assert st.route == "fp32"
    _, _, st = topk_with_stats(q[:3], x, 5, "dot", device="cpu")  # few queries: float32
    assert st.route == "fp32"
    _, _, st = topk_with_stats(q[0], x, 5, "dot")
    assert st.route == "numpy"
    monkeypatch.setattr(ranking, "_bf16_is_fast", lambda dev: False)
    _, _, st = topk_with_stats(q, x, 5, "dot", device="cpu")
    assert st.route == "fp32"  # no native bf16: never the bf16 route on "auto"
    monkeypatch.setattr(ranking, "_bf16_is_fast", lambda dev: True)
    s, i, st = topk_with_stats(q, x, 5, "dot", device="cpu")
    assert st.route == "bf16"
    s0, i0 = topk(q, x, 5, "dot", device="cpu", precision="fp32")
    np.testing.assert_array_equal(i, i0)


def test_bad_options_raise():
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="unknown precision"):
        topk(x, x, 1, precision="fp8")
    with pytest.raises(ValueError, match="margin"):
        topk(x, x, 1, precision="bf16", margin=-1)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_prepared_bf16_copy_gives_the_exact_topk(metric):
    rng = np.random.default_rng(7)
    items = rng.normal(size=(3000, 48)).astype(np.float32)
    items[100] = items[2000]  # exact duplicates: ties by lower index
    queries = rng.normal(size=(40, 48)).astype(np.float32)
    prepared = ranking._BF16Items.build(torch.from_numpy(items), metric)
    s, i, stats = ranking._topk_impl(
        queries, items, 10, metric, "cpu", None, "bf16", None, prepared
    )
    s_ref, i_ref = ranking.topk(queries, items, 10, metric=metric, precision="fp32")
    assert stats.route == "bf16"
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_allclose(s, s_ref, rtol=1e-6, atol=1e-6)


def test_index_large_batches_match_exact_topk():
    rng = np.random.default_rng(8)
    items = rng.normal(size=(ranking.BF16_MIN_ITEMS + 500, 32)).astype(np.float32)
    queries = rng.normal(size=(ranking.BF16_MIN_QUERIES + 3, 32)).astype(np.float32)
    index = ranking.Index(items, list(range(len(items))))
    assert index.last_stats is None
    s, i = index.search_arrays(queries, k=10)
    s_ref, i_ref = ranking.topk(queries, items, 10, metric="cosine", precision="fp32")
    stats = index.last_stats
    assert stats.n_queries == len(queries) and stats.n_fallback <= stats.n_queries
    expected = "bf16" if ranking._cpu_has_fast_bf16() else "fp32"
    assert stats.route == expected
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_allclose(s, s_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_kth_largest_matches_topk_with_negatives_zeros_and_ties(dtype):
    """bf16 / float32 take numpy's partition (bf16 through int16 keys); float64 (and CUDA)
    take torch.topk."""
    torch.manual_seed(0)
    x = torch.randn(50, 3000).to(dtype)
    x[3] = 0.0
    x[4, :100] = -0.0
    x[5] = x[5].round()  # many ties
    x[6] = -x[6].abs()  # all negative: the int16 keys of bf16 flip their order there
    for kth in (1, 7, 100, 3000):
        ref = torch.topk(x.float(), kth, dim=1).values[:, -1]
        got = ranking._kth_largest(x, kth)
        assert got.dtype == dtype
        assert torch.equal(got.float(), ref)


@pytest.mark.parametrize("n_cols", [300, 5000, 5007, 65551])
@pytest.mark.parametrize("n_cand", [10, 75, 175])
@pytest.mark.parametrize("with_floor", [False, True])
def test_select_candidates_keeps_everything_that_can_be_in_the_top(n_cols, n_cand, with_floor):
    torch.manual_seed(n_cols + n_cand)
    scores = torch.randn(23, n_cols).bfloat16()
    scores[5] = scores[5].round()  # ties across groups
    scores[6, :] = 0.5  # all equal
    kth = torch.topk(scores.float(), min(n_cand, n_cols), dim=1).values[:, -1:]
    floor = (kth[:, 0] - 0.1).bfloat16() if with_floor else None
    vals, cols = ranking._select_candidates(scores, n_cand, floor)
    real = cols >= 0
    assert (real.sum(dim=1) >= min(n_cand, n_cols)).all()
    assert torch.equal(torch.gather(scores, 1, cols.clamp_min(0))[real], vals[real])
    kept = torch.zeros_like(scores, dtype=torch.bool)
    for r in range(scores.shape[0]):
        c = cols[r][real[r]]
        assert c.unique().numel() == c.numel()  # no column twice
        kept[r, c] = True
    # whatever was left out is not above the row's n_cand-th largest value
    assert (scores.float()[~kept] <= kth.expand_as(scores)[~kept]).all()


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("prepared", [False, True])
def test_threshold_selection_over_many_chunks_matches_fp32(metric, prepared):
    """Chunks wide enough for the group-max threshold selection, several of them (so the
    running floor prunes later chunks), a ragged last chunk and columns outside the groups;
    clustered items with exact duplicates, so some queries need the retry or the fallback."""
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((40, 32)).astype(np.float32)
    items = centres[rng.integers(0, 40, 20_011)] + 0.3 * rng.standard_normal((20_011, 32))
    items = items.astype(np.float32) * rng.uniform(0.5, 2.0, (20_011, 1)).astype(np.float32)
    items[7_000:7_050] = items[123]  # 50 exact copies of one item
    queries = np.concatenate([items[[123, 5, 19_999]], rng.standard_normal((37, 32))])
    queries = queries.astype(np.float32)
    prep = ranking._BF16Items.build(torch.from_numpy(items), metric) if prepared else None
    for k in (1, 10, 60):
        s, i, st = ranking._topk_impl(queries, items, k, metric, "cpu", 5_003, "bf16", None, prep)
        s_ref, i_ref = topk(queries, items, k, metric, device="cpu", precision="fp32")
        assert st.route == "bf16"
        # the float32 rescoring sums in another order than the GEMM: scores that tie within
        # float32 rounding may swap (RESULTS.md), so compare by exact float64 scores
        exact = _float64_scores(queries, items, metric)
        scale = float(np.abs(exact).max())
        got = np.sort(np.take_along_axis(exact, i, 1), axis=1)
        want = np.sort(np.take_along_axis(exact, i_ref, 1), axis=1)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(s, s_ref, rtol=0, atol=1e-6 * scale)
        assert (np.diff(s, axis=1) <= 0).all()
        swapped = (i != i_ref).any(axis=1).sum()
        assert swapped <= 2, swapped


def _float64_scores(q: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    q, x = q.astype(np.float64), x.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    if metric == "l2":
        return -((q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None])
    return q @ x.T
