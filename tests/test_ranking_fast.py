"""Tests for the exact top-k engine (recsys_kit.topk_engine) behind ranking.topk and Index.

The engine promises one answer whatever the route: the top-k by the canonical float32 score,
ties by the lower index. So the routes (bf16 or float32 candidates, the single-query scan),
chunk sizes and thread counts are compared *bit for bit* with each other (they share the
canonical score, computed in a fixed order), and against the float64 reference tie-aware
(``tests/topk_checks.py``). No test compares two GEMMs bitwise. ``make test`` runs this file
again under other kernels (README, "CPU variety"); it must pass on any x86-64 CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from topk_checks import assert_ties_by_lower_index, assert_topk_exact, reference_scores

from recsys_kit import ranking
from recsys_kit import topk_engine as eng
from recsys_kit.device import int8_matmul_exact
from recsys_kit.jit import numba_available
from recsys_kit.ranking import topk, topk_with_stats


def int8_runs(dim: int) -> bool:
    """Whether the int8 route can run here (numba, and exact int8 products on this CPU: not
    under the AVX2 / no-VNNI kernels that ``make test-cpu-kinds`` forces)."""
    return numba_available() and int8_matmul_exact(dim)


def _routes(q, x, k, metric, **kw):
    """Every GEMM route (and the fp32 and bf16 stats); asserts they give the same answer, to
    the bit: float32, bf16, and int8 where it runs (dot products only)."""
    s0, i0, st0 = topk_with_stats(q, x, k, metric, device="cpu", precision="fp32", **kw)
    s1, i1, st1 = topk_with_stats(q, x, k, metric, device="cpu", precision="bf16", **kw)
    assert (st0.route, st1.route) == ("fp32", "bf16")
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(s1, s0)
    if metric != "l2" and int8_runs(np.atleast_2d(q).shape[1]):
        # 16: the sampled starting floor runs here too; one product per tile (k <= 150 by
        # default) or both (one_max 0)
        for sample, one_max in ((eng.INT8_SAMPLE, eng.INT8_ONE_PRODUCT_MAX_K), (16, 10**6),
                                (eng.INT8_SAMPLE, 0), (16, 0)):  # fmt: skip
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(eng, "INT8_SAMPLE", sample)
                mp.setattr(eng, "INT8_ONE_PRODUCT_MAX_K", one_max)
                s2, i2, st2 = topk_with_stats(q, x, k, metric, device="cpu", precision="int8",
                                              **kw)  # fmt: skip
            assert st2.route == "int8"
            np.testing.assert_array_equal(i2, i0)
            np.testing.assert_array_equal(s2, s0)
    return s0, i0, st0, st1


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("k", [1, 7, 40])
@pytest.mark.parametrize("chunk_size", [None, 333])
def test_random_data_is_exact_on_every_route(metric, k, chunk_size):
    rng = np.random.default_rng(k)
    q = rng.standard_normal((20, 64)).astype(np.float32) * 1.7
    x = rng.standard_normal((3000, 64)).astype(np.float32) * 0.8
    s, i, st0, st1 = _routes(q, x, k, metric, chunk_size=chunk_size)
    assert_topk_exact(s, i, q, x, metric)
    assert st1.n_candidates == k + eng.default_margin(k, "bf16")
    assert st0.n_candidates == k + eng.default_margin(k, "fp32")
    # random data: the proof must succeed for most queries, or the routes are pointless
    assert st0.n_fallback <= 2 and st1.n_fallback <= 2


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_duplicates_and_exact_ties_go_to_the_lower_index(metric):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 32)).astype(np.float32)
    x = np.tile(base, (50, 1))  # each vector 50 times, interleaved: ties everywhere
    q = rng.standard_normal((12, 32)).astype(np.float32)
    for k in (1, 3, 49, 50, 51, 120):
        s, i, st0, st1 = _routes(q, x, k, metric, margin=10, chunk_size=37)
        assert_ties_by_lower_index(s, i, x)
        assert_topk_exact(s, i, q, x, metric)
        # k + 10 candidates inside one group of copies: the last kept approximate score is the
        # k-th one, not below it, so no query is settled by its candidates and every one
        # takes the threshold pass (which finds all the copies)
        if k in (1, 3, 51, 120):
            assert st0.n_fallback == st1.n_fallback == 12, (k, st0, st1)
    # the scan route (one query) gives the same answer
    s1, i1 = topk(q[5], x, 120, metric)
    np.testing.assert_array_equal(i1, i[5:6])
    np.testing.assert_array_equal(s1, s[5:6])


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
    assert not torch.equal(torch.topk(approx, 10).indices, torch.topk(qt @ xt.T, 10).indices)
    for metric in ("dot", "cosine", "l2"):
        s, i, _, st1 = _routes(qs, x, 10, metric, margin=40)
        # gaps of 2e-4 are far above float32 rounding: the exact order, on any CPU
        want = np.argsort(-reference_scores(qs, x, metric), axis=1, kind="stable")[:, :10]
        np.testing.assert_array_equal(i, want)
        if metric != "l2":  # all 30 cluster items are candidates and the rest is far below
            assert st1.n_fallback == 0, (metric, st1)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_zero_margin_forces_the_threshold_pass(metric):
    rng = np.random.default_rng(3)
    q = _unit(rng, 9, 64)
    x = _unit(rng, 2000, 64)
    s, i, st0, st1 = _routes(q, x, 5, metric, margin=0)
    assert_topk_exact(s, i, q, x, metric)
    # with K = k the last kept approximate score is the k-th itself, never 2 eps below it:
    # every query takes the threshold pass, which is exact by construction
    assert st0.n_fallback == st1.n_fallback == 9 and st1.n_candidates == 5


def test_k_equal_n_and_k_1():
    rng = np.random.default_rng(4)
    q = rng.standard_normal((5, 16)).astype(np.float32)
    x = rng.standard_normal((40, 16)).astype(np.float32)
    for metric in ("cosine", "dot", "l2"):
        s, i, _, st1 = _routes(q, x, 40, metric)
        assert st1.n_fallback == 0 and st1.n_candidates == 40  # every item is a candidate
        assert_topk_exact(s, i, q, x, metric)
        s, i, _, _ = _routes(q, x, 1, metric, margin=3)
        assert_topk_exact(s, i, q, x, metric)


def test_all_items_identical_keeps_the_first_k():
    """The threshold pass finds every item: bounded memory, still the lowest indices."""
    x = np.ones((6000, 8), dtype=np.float32)
    q = np.random.default_rng(5).standard_normal((33, 8)).astype(np.float32)
    for metric in ("cosine", "dot", "l2"):
        _, i, st0, st1 = _routes(q, x, 10, metric, chunk_size=1000)
        assert (i == np.arange(10)).all() and st1.n_fallback == 33


def test_torch_inputs_and_other_dtypes():
    rng = np.random.default_rng(5)
    q = rng.standard_normal((8, 32)).astype(np.float32)
    x = rng.standard_normal((900, 32)).astype(np.float32)
    s0, i0 = topk(q, x, 6, "dot", device="cpu", precision="fp32")
    s1, i1 = topk(torch.from_numpy(q), torch.from_numpy(x), 6, "dot", precision="bf16")
    assert isinstance(s1, torch.Tensor) and i1.dtype == torch.int64
    np.testing.assert_array_equal(i1.numpy(), i0)
    np.testing.assert_array_equal(s1.numpy(), s0)
    _, i2 = topk(q.astype(np.float64), x.astype(np.float64), 6, "dot", precision="bf16")
    np.testing.assert_array_equal(i2, i0)


def test_threads_and_blocks_never_change_the_answer():
    rng = np.random.default_rng(6)
    q = torch.from_numpy(rng.standard_normal((70, 24)).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((9000, 24)).astype(np.float32))
    x[4000:4100] = x[17]  # duplicates across blocks
    for metric in ("cosine", "dot", "l2"):
        runs = [
            eng.candidate_topk(q, x, 15, metric, kind=kind, chunk_size=c, threads=t)
            for kind in ("fp32", "bf16")
            for c, t in ((None, 1), (None, 2), (700, 2), (4096, 3))
        ]
        for r in runs[1:]:
            assert torch.equal(r.indices, runs[0].indices) and torch.equal(r.scores, runs[0].scores)
        assert_ties_by_lower_index(runs[0].scores.numpy(), runs[0].indices.numpy(), x.numpy())


def test_canonical_score_is_the_same_bits_for_every_batch_shape():
    """The fixed-order sum: a row's score does not depend on what it is batched with (this is
    what lets every route agree, and identical rows tie exactly)."""
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((300, 384)).astype(np.float32))
    q = torch.from_numpy(rng.standard_normal((4, 384)).astype(np.float32))
    x[10] = x[200]
    for metric in ("cosine", "dot", "l2"):
        # queries as scored: unit rows for cosine, doubled for l2
        qs = {"cosine": eng.unit_rows(q), "dot": q, "l2": q * 2.0}[metric]
        full = eng.canonical_scores(x[None], qs[:, None, :], metric)  # (4, 300)
        for r in range(4):
            one = eng.canonical_scores(x, qs[r], metric)
            pairs = eng.canonical_scores(x[:7], qs[r].expand(7, -1).contiguous(), metric)
            assert torch.equal(one, full[r]) and torch.equal(pairs, full[r, :7])
        assert torch.equal(full[:, 10], full[:, 200])
        exact = reference_scores(q.numpy(), x.numpy(), metric)
        if metric == "l2":  # the canonical l2 score leaves out ||q||^2
            exact = exact + (q.double() ** 2).sum(1).numpy()[:, None]
        np.testing.assert_allclose(full.numpy(), exact, rtol=1e-5, atol=1e-3)
    # fixed_sum: one order, whatever the length and the layout
    v = torch.from_numpy(rng.standard_normal((5, 1001)).astype(np.float32))
    np.testing.assert_allclose(eng.fixed_sum(v.clone()).numpy(), v.double().sum(1), rtol=1e-5)
    assert torch.equal(eng.fixed_sum(v.clone())[2:3], eng.fixed_sum(v[2:3].clone()))


def _pairwise_bound(q, x, approx, metric, kind):
    """eps of :func:`error_bound` for every (query, item) pair, each item on its own."""
    norms = eng.QueryNorms.of(q, q.bfloat16().float() if kind == "bf16" else None)
    cols = []
    for j in range(x.shape[0]):
        _, xmax, dmax, _ = eng._approx_rows(x[j : j + 1], "dot", kind)
        cols.append(eng.error_bound(norms, q.shape[1], xmax, dmax, approx[:, j], metric, kind))
    return torch.stack(cols, dim=1)


def _canonical(q, x, metric):
    qs = {"cosine": eng.unit_rows(q), "dot": q, "l2": q * 2.0}[metric]
    return eng.canonical_scores(x[None], qs[:, None, :], metric)


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
    err = (approx - _canonical(q, x, "dot")).abs()
    limit = _pairwise_bound(q, x, approx, "dot", "bf16")
    assert (err <= limit).all()
    # and the bound is not vacuous: this input really uses a large part of it
    assert float((err / limit).max()) > 0.4
    # random data (the measured rounding-error norms make the bound ~2.5x tighter than the
    # worst case), the l2 form 2 q.x - ||x||^2, and a float32 GEMM against the canonical score
    rng = np.random.default_rng(6)
    q = torch.from_numpy(rng.standard_normal((64, d)).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((600, d)).astype(np.float32) * 3.0)
    approx = (q.bfloat16() @ x.bfloat16().T).float()
    limit = _pairwise_bound(q, x, approx, "dot", "bf16")
    assert ((approx - _canonical(q, x, "dot")).abs() <= limit).all()
    worst = 2 * u * q.norm(dim=1)[:, None] * x.norm(dim=1)[None]
    assert float((limit / worst).max()) < 0.75
    sq = (x * x).sum(dim=1)
    approx_l2 = approx * 2.0 - sq
    bound_l2 = _pairwise_bound(q, x, approx_l2, "l2", "bf16")
    assert ((approx_l2 - _canonical(q, x, "l2")).abs() <= bound_l2).all()
    bf16_limit = {"dot": limit, "l2": bound_l2}
    for metric in ("dot", "l2"):
        f32 = q @ x.T if metric == "dot" else (q @ x.T) * 2.0 - sq
        f32_limit = _pairwise_bound(q, x, f32, metric, "fp32")
        assert ((f32 - _canonical(q, x, metric)).abs() <= f32_limit).all()
        assert float(f32_limit.max()) < 0.2 * float(bf16_limit[metric].min())  # tighter


def test_auto_route_choice(monkeypatch):
    rng = np.random.default_rng(7)
    q = _unit(rng, 40, 32)
    x = _unit(rng, 20000, 32)
    _, _, st = topk_with_stats(q, x, 5, "dot", device="cpu", precision="fp32")
    assert st.route == "fp32"
    _, _, st = topk_with_stats(q[:3], x, 5, "dot", device="cpu")  # few queries: float32
    assert st.route == "fp32"
    _, _, st = topk_with_stats(q[0], x, 5, "dot")
    assert st.route == "scan"
    s0, i0, st = topk_with_stats(q, x, 5, "dot", device="cpu")
    assert st.route == "fp32"  # raw arrays on a CPU: converting them every call does not pay
    monkeypatch.setattr(ranking, "BF16_AUTO_CPU", True)
    for speedup, route in ((0.2, "fp32"), (3.0, "bf16")):  # the measurement decides
        monkeypatch.setattr(ranking, "bf16_matmul_speedup", lambda dev, s=speedup: s)
        s, i, st = topk_with_stats(q, x, 5, "dot", device="cpu")
        assert st.route == route
        np.testing.assert_array_equal(i, i0)
        np.testing.assert_array_equal(s, s0)


def test_index_route_follows_the_measurement_and_the_answer_does_not(monkeypatch):
    rng = np.random.default_rng(8)
    items = rng.normal(size=(ranking.BF16_MIN_ITEMS + 500, 32)).astype(np.float32)
    queries = rng.normal(size=(ranking.BF16_MIN_QUERIES + 3, 32)).astype(np.float32)
    index = ranking.Index(items, list(range(len(items))))
    assert index.last_stats is None
    monkeypatch.setattr(ranking, "_int8_pays", lambda metric, dim, k: False)  # test_topk_int8
    results = {}
    for speedup in (0.5, 4.0):
        monkeypatch.setattr(ranking, "bf16_matmul_speedup", lambda dev, s=speedup: s)
        results[speedup] = index.search_arrays(queries, k=10)
        assert index.last_stats.route == ("bf16" if speedup > 1 else "fp32")
        assert index.last_stats.n_queries == len(queries)
    for a, b in zip(results[0.5], results[4.0], strict=True):
        np.testing.assert_array_equal(a, b)
    s, i = results[4.0]
    assert_topk_exact(s, i, queries, items, "cosine")
    # the index normalises the engine's way: its answer is topk's on the unit vectors
    unit = eng.unit_rows(torch.from_numpy(items)).numpy()
    qu = eng.unit_rows(torch.from_numpy(queries)).numpy()
    s_ref, i_ref = topk(qu, unit, 10, metric="dot", device="cpu")
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_array_equal(s, s_ref)
    # one query: the scan route, the same answer as in the batch
    s1, i1 = index.search_arrays(queries[4], k=10)
    assert index.last_stats.route == "scan"
    np.testing.assert_array_equal(i1, i[4:5])


def test_workers_fit_the_free_cores_only_on_the_amx_bf16_route(monkeypatch):
    """With a core busy but another free, the bf16 route on AMX (a measured bf16 speedup of
    at least AMX_MIN_SPEEDUP) runs one worker per free core; float32 and bf16 without AMX keep
    all of them (smaller blocks), as does AMX when no core is free."""
    rng = np.random.default_rng(9)
    q, x = _unit(rng, 40, 16), _unit(rng, 5000, 16)
    saved = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        answers = []
        for free, speedup, precision, threads in (
            (4.0, 4.0, "bf16", 4), (1.2, 4.0, "bf16", 1), (2.6, 4.0, "bf16", 3),
            (0.2, 4.0, "bf16", 4), (1.2, 1.8, "bf16", 4), (1.2, 4.0, "fp32", 4),
        ):  # fmt: skip
            monkeypatch.setattr(ranking, "free_cores", lambda f=free: f)
            monkeypatch.setattr(ranking, "bf16_matmul_speedup", lambda dev, s=speedup: s)
            s, i, st = topk_with_stats(q, x, 7, "dot", device="cpu", precision=precision)
            assert (st.route, st.threads) == (precision, threads)
            answers.append((s, i))
        for s, i in answers[1:]:
            np.testing.assert_array_equal(i, answers[0][1])
            np.testing.assert_array_equal(s, answers[0][0])
    finally:
        torch.set_num_threads(saved)


def test_bad_options_raise():
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="unknown precision"):
        topk(x, x, 1, precision="fp8")
    with pytest.raises(ValueError, match="margin"):
        topk(x, x, 1, precision="bf16", margin=-1)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("low", [False, True])
def test_prepared_items_give_the_same_answer(metric, low):
    rng = np.random.default_rng(7)
    items = rng.normal(size=(3000, 48)).astype(np.float32)
    items[100] = items[2000]  # exact duplicates: ties by lower index
    queries = rng.normal(size=(40, 48)).astype(np.float32)
    prec = "bf16" if low else "fp32"
    prepared = eng.PreparedItems.build(torch.from_numpy(items), metric, prec)
    assert prepared.kind == prec
    s, i, stats = ranking._topk_impl(queries, items, 10, metric, "cpu", None, prec, None, prepared)
    s_ref, i_ref = ranking.topk(queries, items, 10, metric=metric, precision=prec)
    assert stats.route == prec
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_array_equal(s, s_ref)
    assert_ties_by_lower_index(s, i, items)


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
        got = eng.kth_largest(x, kth)
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
    vals, cols, t = eng.select_candidates(scores, n_cand, floor)
    real = cols >= 0
    assert (real.sum(dim=1) >= min(n_cand, n_cols)).all()
    assert torch.equal(torch.gather(scores, 1, cols.clamp_min(0))[real], vals[real])
    assert t is not None and (t.float() <= kth[:, 0]).all()  # a lower bound of the n_cand-th
    kept = torch.zeros_like(scores, dtype=torch.bool)
    for r in range(scores.shape[0]):
        c = cols[r][real[r]]
        assert c.unique().numel() == c.numel()  # no column twice
        kept[r, c] = True
    # whatever was left out is not above the row's n_cand-th largest value
    assert (scores.float()[~kept] <= kth.expand_as(scores)[~kept]).all()


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("prepared", [False, True])
def test_threshold_selection_over_many_chunks(metric, prepared):
    """Chunks wide enough for the group-max threshold selection, several of them (so the
    running floor prunes later chunks), a ragged last chunk and columns outside the groups;
    clustered items with exact duplicates, so some queries need the threshold pass."""
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((40, 32)).astype(np.float32)
    items = centres[rng.integers(0, 40, 20_011)] + 0.3 * rng.standard_normal((20_011, 32))
    items = items.astype(np.float32) * rng.uniform(0.5, 2.0, (20_011, 1)).astype(np.float32)
    items[7_000:7_050] = items[123]  # 50 exact copies of one item
    queries = np.concatenate([items[[123, 5, 19_999]], rng.standard_normal((37, 32))])
    queries = queries.astype(np.float32)
    prep = eng.PreparedItems.build(torch.from_numpy(items), metric) if prepared else None
    for k in (1, 10, 60):
        s, i, st = ranking._topk_impl(queries, items, k, metric, "cpu", 5_003, "bf16", None, prep)
        s_ref, i_ref = topk(queries, items, k, metric, device="cpu", precision="fp32")
        assert st.route == "bf16"
        np.testing.assert_array_equal(i, i_ref)
        np.testing.assert_array_equal(s, s_ref)
        assert_topk_exact(s, i, queries, items, metric)
        assert_ties_by_lower_index(s, i, items)
