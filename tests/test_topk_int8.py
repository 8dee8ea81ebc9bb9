"""The int8 candidate route of the top-k engine and its compiled kernels.

The route proposes candidates from exact int32 sums of two int8 digits per item; its answer must
be the float32 route's, bit for bit, and its error bound must hold for every pair. Its kernels
(``recsys_kit.topk_kernels``) are checked against plain numpy / the torch canonical score.
Tests of the route itself skip where it cannot run (no numba; int8 products that saturate, as
under the AVX2 kernels ``make test-cpu-kinds`` forces, where the route-choice tests check that
it is not taken).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from topk_checks import assert_ties_by_lower_index, assert_topk_exact

from recsys_kit import device, ranking
from recsys_kit import topk_engine as eng
from recsys_kit.jit import numba_available
from recsys_kit.ranking import Index, topk, topk_with_stats

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba (the fast extra) missing")


def _runs(dim: int) -> None:
    if not device.int8_matmul_exact(dim):
        pytest.skip("int8 products saturate on this CPU / these kernels: the route is off")


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["dot", "cosine", "l2"])
@pytest.mark.parametrize("dim", [1, 3, 64, 385])
def test_compiled_canonical_scores_are_the_same_bits(metric, dim):
    from recsys_kit.topk_kernels import METRIC_CODES, canonical_pairs

    rng = np.random.default_rng(dim)
    x = (rng.standard_normal((300, dim)) * rng.uniform(0.01, 30, (300, 1))).astype(np.float32)
    x[7] = 0.0  # a zero row (cosine: clamped norm)
    q = rng.standard_normal((9, dim)).astype(np.float32)
    cand = rng.integers(0, 300, (9, 50))
    cand[:, 0] = 7
    need = rng.random((9, 50)) < 0.7
    need[:, 0] = True
    out = np.empty((9, 50), np.float32)
    canonical_pairs(q, x, cand, need, METRIC_CODES[metric], out)
    rows = torch.from_numpy(x)[torch.from_numpy(cand)]
    want = eng.canonical_scores(rows, torch.from_numpy(q)[:, None, :], metric).numpy()
    want[~need] = -np.inf
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("base", [254, 0])  # 0: one digit, the scores are a itself
@pytest.mark.parametrize("seed", range(6))
def test_tile_selection_keeps_everything_that_can_be_in_the_top(seed, base):
    from recsys_kit.topk_kernels import SELECT_GROUPS, select_tile

    rng = np.random.default_rng(seed)
    rows, keep = 6, int(rng.integers(1, 80))
    width = int(rng.integers(1, 5000))
    spread = int(rng.choice([3, 50, 10**6]))  # 3: ties everywhere
    a = rng.integers(-spread, spread, (rows, width)).astype(np.int32)
    b = rng.integers(-127, 128, (rows, width)).astype(np.int32)
    full = a.astype(np.int64) * base + b if base else a.astype(np.int64)
    cap = 4 * keep
    vals = np.empty((rows, cap), np.int32)
    cols = np.empty((rows, cap), np.int64)
    cnt = np.zeros(rows, np.int64)
    floor = np.full(rows, np.iinfo(np.int32).min, np.int32)
    gmax = np.empty(width // SELECT_GROUPS + 1, np.int32)
    cuts = sorted({0, width, *rng.integers(0, width, 3).tolist()})
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):  # several tiles, one running state
        ta, tb = a[:, lo:hi].copy(), b[:, lo:hi].copy()
        select_tile(
            ta, tb, base, lo, floor, vals, cols, cnt, keep, gmax, keep, np.zeros(rows, np.int64)
        )
        np.testing.assert_array_equal(ta, a[:, lo:hi])  # the tiles are only read
    for r in range(rows):
        v, c = vals[r, : cnt[r]], cols[r, : cnt[r]]
        np.testing.assert_array_equal(full[r, c], v)  # the right column with each value
        assert len(set(c.tolist())) == len(c)  # no column twice
        top = np.sort(full[r])[::-1][: min(keep, width)]
        np.testing.assert_array_equal(np.sort(v)[::-1][: len(top)], top)
        left = np.setdiff1d(np.arange(width), c)
        assert (full[r, left] <= top[-1]).all() and (full[r, left] <= floor[r]).all()


@pytest.mark.parametrize("seed", range(4))
def test_tile_selection_of_bf16_bits_keeps_the_largest_numbers(seed):
    """int16 tiles hold bf16 scores: selected by order keys that order as the numbers do
    (negatives, -0.0 and +0.0, ties), and the kept keys turn back into the same numbers."""
    from recsys_kit.topk_kernels import SELECT_GROUPS, bf16_keys, bf16_of_keys, select_tile

    rng = np.random.default_rng(seed)
    rows, keep, width = 5, int(rng.integers(1, 60)), int(rng.integers(1, 3000))
    f = rng.standard_normal((rows, width)).astype(np.float32) * 10.0 ** rng.integers(-3, 3)
    f[:, ::7] = rng.choice([0.0, -0.0, 1.0, -1.0], (rows, len(range(0, width, 7))))
    bits = torch.from_numpy(f).bfloat16().view(torch.int16).numpy()
    num = torch.from_numpy(f).bfloat16().float().numpy()  # the bf16 numbers
    keys = bf16_keys(bits)
    np.testing.assert_array_equal(bf16_of_keys(keys).view(np.int32), num.view(np.int32))
    order = np.argsort(keys, axis=1, kind="stable")
    assert (np.diff(np.take_along_axis(num, order, axis=1), axis=1) >= 0).all()
    cap = 4 * keep
    vals, cols = np.empty((rows, cap), np.int32), np.empty((rows, cap), np.int64)
    cnt, floor = np.zeros(rows, np.int64), np.full(rows, np.iinfo(np.int32).min, np.int32)
    gmax = np.empty(width // SELECT_GROUPS + 1, np.int32)
    for lo, hi in zip([0, width // 2], [width // 2, width], strict=True):
        t = bits[:, lo:hi].copy()
        select_tile(t, t, 0, lo, floor, vals, cols, cnt, keep, gmax, keep, np.zeros(rows, np.int64))
    for r in range(rows):
        v, c = vals[r, : cnt[r]], cols[r, : cnt[r]]
        np.testing.assert_array_equal(keys[r, c], v)
        top = np.sort(keys[r])[::-1][: min(keep, width)]
        np.testing.assert_array_equal(np.sort(v)[::-1][: len(top)], top)
        left = np.setdiff1d(np.arange(width), c)
        assert (keys[r, left] <= floor[r]).all() and (
            num[r, left] <= bf16_of_keys(floor[r : r + 1])[0]
        ).all()


def test_union_and_keep_above_move_the_right_entries():
    from recsys_kit.topk_kernels import keep_above, union_rows

    rng = np.random.default_rng(21)
    states, rows, cap = 3, 7, 40
    vals3 = rng.integers(-50, 50, (states, rows, cap)).astype(np.int32)
    cols3 = rng.integers(0, 10**6, (states, rows, cap)).astype(np.int64)
    cnt2 = rng.integers(0, cap + 1, (states, rows)).astype(np.int64)
    width = int(cnt2.sum(axis=0).max()) + 3
    v = np.empty((rows, width), np.int32)
    c = np.empty((rows, width), np.int64)
    union_rows(vals3, cols3, cnt2, 0, 4, v, c)
    union_rows(vals3, cols3, cnt2, 4, rows, v, c)  # two shares, as on two workers
    thr = rng.integers(-60, 60, rows).astype(np.int32)
    kept = np.zeros(rows, np.int64)
    want = []
    for r in range(rows):
        ev = np.concatenate([vals3[s, r, : cnt2[s, r]] for s in range(states)])
        ec = np.concatenate([cols3[s, r, : cnt2[s, r]] for s in range(states)])
        np.testing.assert_array_equal(v[r, : len(ev)], ev)
        np.testing.assert_array_equal(c[r, : len(ec)], ec)
        pads = np.iinfo(np.int32).min + np.arange(len(ev), width)  # distinct padding
        assert (c[r, len(ec) :] == -1).all() and (v[r, len(ev) :] == pads).all()
        want.append((ev[ev >= thr[r]], ec[ev >= thr[r]]))
    keep_above(v, c, thr, 0, rows, kept)
    for r, (wv, wc) in enumerate(want):
        assert kept[r] == len(wv)
        np.testing.assert_array_equal(v[r, : len(wv)], wv)  # in order
        np.testing.assert_array_equal(c[r, : len(wc)], wc)
        assert (c[r, len(wc) :] == -1).all()


def test_second_digit_completes_the_scores_in_its_range():
    from recsys_kit.topk_kernels import second_digit

    rng = np.random.default_rng(22)
    q1 = rng.integers(-127, 128, (9, 37)).astype(np.int8)
    x2 = rng.integers(-127, 128, (500, 37)).astype(np.int8)
    cols = rng.integers(-1, 500, (9, 60)).astype(np.int64)  # -1: no candidate
    a = rng.integers(-5000, 5000, (9, 60)).astype(np.int32)
    lo, hi = (np.sort(rng.integers(-6000, 6000, (2, 9)), axis=0)).astype(np.int32)
    for drop in (False, True):
        out = np.full((9, 60), 7, np.int32)
        c = cols.copy()
        second_digit(q1, x2, c, a, 254, lo, hi, drop, out)
        inside = (cols >= 0) & (a >= lo[:, None]) & (a < hi[:, None])
        full = 254 * a.astype(np.int64) + np.einsum(
            "rd,rcd->rc", q1.astype(np.int64), x2[cols.clip(0)].astype(np.int64)
        )
        np.testing.assert_array_equal(out[inside], full[inside])
        assert (out[~inside] == 7).all()  # untouched elsewhere
        dropped = (cols >= 0) & (a < lo[:, None])
        np.testing.assert_array_equal(c, np.where(dropped, -1, cols) if drop else cols)


def test_int8_digits_live_in_huge_page_memory_where_linux_allows():
    t = eng._huge_page_empty(3 * 2**20)
    assert t.dtype == torch.int8 and t.numel() == 3 * 2**20
    t.fill_(5)
    assert int(t[-1]) == 5 and int(t.sum()) == 5 * 3 * 2**20
    x = torch.randn(9000, 384)  # 3.5 MB of digits each: the huge-page path
    prep = eng.PreparedItems.build(x, "dot", "int8")
    again = pickle.loads(pickle.dumps(prep))
    assert torch.equal(again.low, prep.low) and torch.equal(again.low2, prep.low2)


@pytest.mark.parametrize("seed", range(4))
def test_best_pairs_orders_as_order_rows_does(seed):
    """Score descending, then lower column; -0.0 ties +0.0 and keeps its sign; -inf (not
    scored) only when a row has too few scored entries."""
    from recsys_kit.topk_kernels import best_pairs

    rng = np.random.default_rng(seed)
    for _ in range(60):
        rows, width = 4, int(rng.integers(1, 70))
        keep = int(rng.integers(1, width + 1))
        pool = np.array([0.0, -0.0, 1.5, -1.5, -np.inf, 2.0, -3e-39, 3e-39, 7.0], np.float32)
        s = (rng.choice(pool, (rows, width)) if seed % 2 else
             rng.standard_normal((rows, width)).astype(np.float32))  # fmt: skip
        cols = np.stack([rng.permutation(10**6)[:width] for _ in range(rows)]).astype(np.int64)
        out_v = np.empty((rows, keep), np.float32)
        out_i = np.empty((rows, keep), np.int64)
        best_pairs(s, cols, keep, out_v, out_i)
        v, i = eng.order_rows(torch.from_numpy(s), torch.from_numpy(cols))
        np.testing.assert_array_equal(out_i, i[:, :keep].numpy())
        np.testing.assert_array_equal(out_v.view(np.int32), v[:, :keep].numpy().view(np.int32))


# --------------------------------------------------------------------------------------------
# the error bound
# --------------------------------------------------------------------------------------------
def test_int8_error_bound_holds_for_every_pair():
    """|approximate - canonical| <= eps for every pair, on rows built to round badly (every
    coordinate near a half step of both digits) and on random rows of very different norms."""
    _runs(96)
    rng = np.random.default_rng(11)
    d = 96
    x = (rng.standard_normal((400, d)) * rng.uniform(0.001, 5, (400, 1))).astype(np.float32)
    step = float(np.abs(x).max()) / 127
    x[:40] = step * (np.round(rng.uniform(-100, 100, (40, d))) + 0.5 - 1 / 1024)
    q = (rng.standard_normal((30, d)) * rng.uniform(0.01, 9, (30, 1))).astype(np.float32)
    q[:5] = np.round(q[:5] * 3) / 3 + 1 / 7  # far from the query grid, all the same way
    qt, xt = torch.from_numpy(q), torch.from_numpy(x)
    prep = eng.PreparedItems.build(xt, "dot", "int8")
    plan = eng._Plan(qt, xt, "dot", "int8", prep)
    approx = plan.approx(slice(None), 0, len(x))
    canon = eng.canonical_scores(xt[None], qt[:, None, :], "dot")
    eps = torch.stack([
        eng.error_bound(plan.norms, d, prep.xmax, prep.dmax, approx[:, j].abs(), "dot", "int8")
        for j in range(len(x))
    ], dim=1)  # fmt: skip
    err = (approx - canon).abs()
    assert (err <= eps).all()
    assert float((err / eps).max()) > 0.05  # not vacuous


def test_large_dimensions_shrink_the_digit_base_instead_of_overflowing():
    for d, base in ((384, 254), (522, 254), (1024, 128), (4096, 32)):
        got = eng.int8_base(d)
        assert 127 * (127 * got + got / 2) * d < 2**31 and got <= base + 2
    _runs(1500)
    rng = np.random.default_rng(12)
    d = 1500
    x = np.sign(rng.standard_normal((700, d))).astype(np.float32)  # every coordinate at max
    x[:300] *= rng.uniform(0.99, 1.0, (300, d)).astype(np.float32)
    q = np.sign(rng.standard_normal((40, d))).astype(np.float32)
    q[:3] = x[:3]  # scores at the int32 limit of the digits
    s0, i0 = topk(q, x, 7, "dot", device="cpu", precision="fp32")
    s1, i1, st = topk_with_stats(q, x, 7, "dot", device="cpu", precision="int8")
    assert st.route == "int8"
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(s1, s0)


# --------------------------------------------------------------------------------------------
# the route
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["dot", "cosine"])
@pytest.mark.parametrize("k", [1, 10, 64])
def test_int8_route_gives_the_float32_answer_on_clustered_data(metric, k):
    _runs(48)
    rng = np.random.default_rng(k)
    centres = _unit(rng, 12, 48)
    x = centres[rng.integers(0, 12, 6000)] + 0.05 * rng.standard_normal((6000, 48))
    x = (x * rng.uniform(0.5, 2.0, (6000, 1))).astype(np.float32)
    x[100:160] = x[5]  # 61 copies of one item: ties across tiles
    q = centres[rng.integers(0, 12, 70)] + 0.1 * rng.standard_normal((70, 48))
    q = q.astype(np.float32)
    q[0] = x[5]
    s0, i0 = topk(q, x, k, metric, device="cpu", precision="fp32")
    s1, i1, st = topk_with_stats(q, x, k, metric, device="cpu", precision="int8")
    assert st.route == "int8" and st.n_candidates == k + eng.default_margin(k, "int8")
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(s1, s0)
    assert_topk_exact(s1, i1, q, x, metric)
    assert_ties_by_lower_index(s1, i1, x)


def _clustered(rng: np.random.Generator, n: int, d: int, n_q: int):
    """Items in 12 clusters of different norms, 61 copies of one item, queries near the
    clusters (one equal to the copied item)."""
    centres = _unit(rng, 12, d)
    x = centres[rng.integers(0, 12, n)] + 0.05 * rng.standard_normal((n, d))
    x = (x * rng.uniform(0.5, 2.0, (n, 1))).astype(np.float32)
    x[100:161] = x[5]
    q = (centres[rng.integers(0, 12, n_q)] + 0.1 * rng.standard_normal((n_q, d))).astype(np.float32)
    q[0] = x[5]
    return q, x


@pytest.mark.parametrize("k", [1, 10, 64, 200])  # 200: both products per tile
def test_the_sampled_floor_path_gives_the_float32_answer(k, monkeypatch):
    """Large searches start each query from a floor estimated on a sample (here a sample of
    64 items, so that it runs): the answer is the float32 route's, and more tasks
    than workers (a busy machine) change nothing."""
    _runs(48)
    monkeypatch.setattr(eng, "INT8_SAMPLE", 64)
    rng = np.random.default_rng(k + 100)
    q, x = _clustered(rng, ranking.BF16_MIN_ITEMS + 500, 48, 70)  # enough for an Index
    s0, i0 = topk(q, x, k, "cosine", device="cpu", precision="fp32")
    qt, xt = torch.from_numpy(q), torch.from_numpy(x)
    prep = eng.PreparedItems.build(xt, "cosine", "int8")
    for blocks in (2, 9):
        r = eng.candidate_topk(qt, xt, k, "cosine", kind="int8", prepared=prep, threads=2,
                               blocks_per_worker=blocks)  # fmt: skip
        np.testing.assert_array_equal(r.indices.numpy(), i0)
        np.testing.assert_array_equal(r.scores.numpy(), s0)
    # and through an Index, which searches under torch.inference_mode
    monkeypatch.setattr(ranking, "bf16_matmul_speedup", lambda dev: 0.6)
    monkeypatch.setattr(ranking, "int8_matmul_speedup", lambda: 4.0)
    index = Index(x, list(range(len(x))))
    s1, i1 = index.search_arrays(q, k)
    assert index.last_stats.route == "int8"
    monkeypatch.setattr(ranking, "int8_matmul_speedup", lambda: 1.0)
    s2, i2 = index.search_arrays(q, k)  # the same index on its float32 route
    assert index.last_stats.route == "fp32"
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("one_max", [64, 0])  # one product per tile, or both
@pytest.mark.parametrize("miss", ["above_everything", "between_a_k_and_its_reach", "mixed"])
def test_a_floor_estimate_that_misses_costs_time_not_exactness(miss, one_max, monkeypatch):
    """The sampled floor is an estimate. Too high for a query: fewer than k candidates, the
    query is selected again without it; between a_k - 2e and a_k: the settle test fails and
    the threshold pass finishes it. Either way the answer does not change."""
    _runs(32)
    rng = np.random.default_rng(17)
    q, x = _clustered(rng, 5000, 32, 40)
    k = 10
    s0, i0 = topk(q, x, k, "dot", device="cpu", precision="fp32")
    qt, xt = torch.from_numpy(q), torch.from_numpy(x)
    prep = eng.PreparedItems.build(xt, "dot", "int8")
    plan = eng._Plan(qt, xt, "dot", "int8", prep)
    exact_int = plan.int_scores(plan.qlow, 0, len(x)).numpy()
    a_k = np.sort(exact_int, axis=1)[:, -k]  # the k-th int32 score of each query
    high = np.full(len(q), np.iinfo(np.int32).max - 1, np.int32)
    between = (a_k - 1).astype(np.int32)  # k candidates or so: the pool does not reach a_k - 2e
    floor = {"above_everything": high, "between_a_k_and_its_reach": between,
             "mixed": np.where(np.arange(len(q)) % 2 == 0, high, between)}[miss]  # fmt: skip
    monkeypatch.setattr(eng, "_int8_floor", lambda *a: torch.from_numpy(floor.copy()))
    monkeypatch.setattr(eng, "INT8_ONE_PRODUCT_MAX_K", one_max)
    r = eng.candidate_topk(qt, xt, k, "dot", kind="int8", prepared=prep, threads=2)
    np.testing.assert_array_equal(r.indices.numpy(), i0)
    np.testing.assert_array_equal(r.scores.numpy(), s0)
    if miss != "above_everything":
        assert r.n_threshold > 0  # the settle test caught the floor


@pytest.mark.parametrize("miss", [None, "above_everything", "mixed"])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_the_compiled_bf16_selection_gives_the_float32_answer(k, miss, monkeypatch):
    """The bf16 route on CPU selects the bf16 scores of each tile with compiled code
    (``_select_pool_bf16``), from a floor estimated on a sample (64 items here, so that it
    runs). Same answer as float32 and as the torch selection; a floor estimate above a
    query's candidates sends it through again without one."""
    monkeypatch.setattr(eng, "INT8_SAMPLE", 64)
    rng = np.random.default_rng(k + 7)
    q, x = _clustered(rng, ranking.BF16_MIN_ITEMS + 500, 48, 70)
    s0, i0 = topk(q, x, k, "cosine", device="cpu", precision="fp32")
    qt, xt = torch.from_numpy(q), torch.from_numpy(x)
    prep = eng.PreparedItems.build(xt, "cosine", "bf16")
    if miss is not None:
        high = np.full(len(q), np.iinfo(np.int32).max - 1, np.int32)
        floor = high if miss == "above_everything" else np.where(np.arange(len(q)) % 2, high, 0)
        monkeypatch.setattr(eng, "_bf16_floor", lambda *a: torch.from_numpy(floor.astype(np.int32)))
    picked = []
    real = eng._select_pool_bf16
    monkeypatch.setattr(eng, "_select_pool_bf16", lambda *a: picked.append(1) or real(*a))
    for blocks in (2, 9):
        r = eng.candidate_topk(qt, xt, k, "cosine", kind="bf16", prepared=prep, threads=2,
                               blocks_per_worker=blocks)  # fmt: skip
        np.testing.assert_array_equal(r.indices.numpy(), i0)
        np.testing.assert_array_equal(r.scores.numpy(), s0)
    assert picked
    monkeypatch.setattr(eng, "_compiled_bf16", lambda *a: False)  # the torch selection
    r = eng.candidate_topk(qt, xt, k, "cosine", kind="bf16", prepared=prep, threads=2)
    np.testing.assert_array_equal(r.indices.numpy(), i0)


def test_index_takes_int8_where_it_pays_and_the_answer_does_not_change(monkeypatch):
    _runs(32)
    rng = np.random.default_rng(13)
    items = rng.normal(size=(ranking.BF16_MIN_ITEMS + 700, 32)).astype(np.float32)
    queries = rng.normal(size=(ranking.BF16_MIN_QUERIES + 5, 32)).astype(np.float32)
    monkeypatch.setattr(ranking, "bf16_matmul_speedup", lambda dev: 0.6)
    monkeypatch.setattr(ranking, "int8_matmul_speedup", lambda: 4.0)
    index = Index(items, list(range(len(items))))
    s, i = index.search_arrays(queries, k=10)
    assert index.last_stats.route == "int8"
    assert set(index._prepared_items) == {"int8"}
    assert_topk_exact(s, i, queries, items, "cosine")
    # larger k, slower int8, bf16 faster, saturating int8 products: other routes, same answer
    with monkeypatch.context() as m:
        m.setattr(ranking, "INT8_MAX_K", 8)
        _, _ = index.search_arrays(queries, k=9)
        assert index.last_stats.route == "fp32"
    cases = [("int8_matmul_speedup", lambda: 2.0, "fp32"),
             ("int8_matmul_exact", lambda dim: False, "fp32"),
             ("bf16_matmul_speedup", lambda dev: 3.0, "bf16")]  # fmt: skip
    for name, fake, route in cases:
        with monkeypatch.context() as m:
            m.setattr(ranking, name, fake)
            s2, i2 = index.search_arrays(queries, k=10)
            assert index.last_stats.route == route, name
            np.testing.assert_array_equal(i2, i)
            np.testing.assert_array_equal(s2, s)
    # l2 ranks 2 q.x - ||x||^2, not a dot product: never int8
    l2 = Index(items, list(range(len(items))), metric="l2")
    l2.search_arrays(queries, k=10)
    assert l2.last_stats.route == "fp32"


def test_auto_takes_int8_only_where_the_products_are_exact(monkeypatch):
    """On every CPU (and under every kernel ``make test-cpu-kinds`` forces): an Index whose
    int8 route would pay takes it exactly when this CPU's int8 products are exact."""
    rng = np.random.default_rng(14)
    items = rng.normal(size=(ranking.BF16_MIN_ITEMS + 100, 24)).astype(np.float32)
    queries = rng.normal(size=(ranking.BF16_MIN_QUERIES, 24)).astype(np.float32)
    monkeypatch.setattr(ranking, "bf16_matmul_speedup", lambda dev: 0.6)
    monkeypatch.setattr(ranking, "int8_matmul_speedup", lambda: 4.0)
    index = Index(items, list(range(len(items))))
    s, i = index.search_arrays(queries, k=5)
    assert (index.last_stats.route == "int8") == device.int8_matmul_exact(24)
    assert_topk_exact(s, i, queries, items, "cosine")


def test_int8_precision_errors_name_the_fix(monkeypatch):
    x = np.eye(8, dtype=np.float32)
    with pytest.raises(ValueError, match="metric 'dot' or 'cosine'"):
        topk(x, x, 1, "l2", device="cpu", precision="int8")
    monkeypatch.setattr(ranking, "int8_matmul_exact", lambda dim: False)
    with pytest.raises(RuntimeError, match="saturate.*precision='auto'"):
        topk(x, x, 1, "dot", device="cpu", precision="int8")
    monkeypatch.setattr("recsys_kit.jit.numba_available", lambda: False)
    with pytest.raises(ImportError, match="pip install"):
        topk(x, x, 1, "dot", device="cpu", precision="int8")


def test_the_exactness_probe_catches_saturating_products(monkeypatch):
    probe = device.int8_matmul_exact.__wrapped__
    real = torch._int_mm

    def saturating(a, b, **kw):
        """What oneDNN does without VNNI: a + 128 as u8 times b, adjacent products summed into
        int16 with saturation (vpmaddubsw), then 128 * sum(b) subtracted."""
        u, w = a.to(torch.int64) + 128, b.to(torch.int64)
        pairs = torch.nn.functional.pad(u[:, None, :] * w.T[None, :, :], (0, a.shape[1] % 2))
        summed = (pairs[..., 0::2] + pairs[..., 1::2]).clamp(-32768, 32767).sum(-1)
        return (summed - 128 * w.sum(0)[None, :]).to(torch.int32)

    assert probe(24) is True or not device.int8_matmul_exact(24)  # the real one, either way
    monkeypatch.setattr(torch, "_int_mm", saturating)
    assert probe(24) is False
    monkeypatch.setattr(torch, "_int_mm", real)


def test_many_queries_take_narrower_tiles_and_the_same_answer():
    _runs(16)
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    q = rng.standard_normal((5000, 16)).astype(np.float32)  # tiles of 832 items, not 2048
    s0, i0 = topk(q, x, 3, "dot", device="cpu", precision="fp32")
    s1, i1 = topk(q, x, 3, "dot", device="cpu", precision="int8")
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(s1, s0)


@pytest.mark.parametrize("metric", ["dot", "cosine", "l2"])
def test_compiled_and_torch_rescoring_give_the_same_answer(metric, monkeypatch):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((4000, 40)).astype(np.float32)
    x[50:90] = x[3]  # ties
    q = rng.standard_normal((45, 40)).astype(np.float32)
    answers = []
    for work in (0, 2**62):  # every rescoring compiled, then none
        monkeypatch.setattr(eng, "COMPILED_MIN_WORK", work)
        answers.append(topk(q, x, 12, metric, device="cpu", precision="fp32"))
    for a, b in zip(*answers, strict=True):
        np.testing.assert_array_equal(a, b)


def test_dense_clusters_keep_every_candidate_instead_of_falling_back():
    """Hundreds of items within the int8 bound of the k-th score (tight clusters, as real
    embeddings of similar products): the buffers keep every candidate that can matter (the
    k-th so far minus the bound), so no query needs the threshold pass (a full GEMM row
    each). Truncated to the k + margin largest instead (reach 0), most queries would."""
    _runs(64)
    rng = np.random.default_rng(23)
    centres = _unit(rng, 20, 64)
    x = (centres[rng.integers(0, 20, 20000)] + 0.2 * _unit(rng, 20000, 64)).astype(np.float32)
    q = (centres[rng.integers(0, 20, 48)] + 0.2 * _unit(rng, 48, 64)).astype(np.float32)
    s0, i0 = topk(q, x, 10, "cosine", device="cpu", precision="fp32")
    qt, xt = torch.from_numpy(q), torch.from_numpy(x)
    prep = eng.PreparedItems.build(xt, "cosine", "int8")
    passes = []
    for truncate in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            if truncate:
                mp.setattr(eng, "_int8_reach", lambda plan, rows, digits: np.zeros(
                    plan.qlow[rows].shape[0], np.int64))  # fmt: skip
            r = eng.candidate_topk(qt, xt, 10, "cosine", kind="int8", prepared=prep, threads=2)
        np.testing.assert_array_equal(r.indices.numpy(), i0)
        np.testing.assert_array_equal(r.scores.numpy(), s0)
        passes.append(r.n_threshold)
    assert passes[0] == 0 and passes[1] > len(q) // 2  # measured 37-46 of 48 truncated


def test_many_queries_are_searched_in_turns_with_bounded_buffers(monkeypatch):
    """More queries than INT8_MAX_QUERIES (here 7 of 50): searched in turns, the same
    answer (int8 and the compiled bf16 selection)."""
    _runs(24)
    rng = np.random.default_rng(24)
    x = rng.standard_normal((3000, 24)).astype(np.float32)
    x[10:40] = x[3]  # ties
    q = rng.standard_normal((50, 24)).astype(np.float32)
    q[0] = x[3]
    s0, i0, st0 = topk_with_stats(q, x, 8, "dot", device="cpu", precision="int8")
    monkeypatch.setattr(eng, "INT8_MAX_QUERIES", 7)
    monkeypatch.setattr(eng, "INT8_SAMPLE", 16)  # and the sampled floor in every turn
    s1, i1, st1 = topk_with_stats(q, x, 8, "dot", device="cpu", precision="int8")
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(s1, s0)
    assert st0.route == st1.route == "int8"
    s2, i2, st2 = topk_with_stats(q, x, 8, "dot", device="cpu", precision="bf16")  # compiled
    np.testing.assert_array_equal(i2, i0)
    assert st2.route == "bf16"
