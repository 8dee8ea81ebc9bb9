"""Tests for recsys_kit.ranking: exact top-k, tie-breaking, conventions, errors, Index.

Comparisons with the float64 reference are tie-aware (``tests/topk_checks.py``): two
computations of a score may round differently on another CPU. Where the kit promises the same
bits (routes, chunk sizes, threads, the canonical score), the tests compare bits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from topk_checks import assert_ties_by_lower_index, assert_topk_exact, reference_scores

from recsys_kit.ranking import Index, naive_topk_loop, topk, topk_with_stats


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((9, 16)).astype(np.float32),
        rng.standard_normal((1500, 16)).astype(np.float32),
    )


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("chunk_size", [None, 97, 1500])
def test_matches_brute_force(data, metric, chunk_size):
    q, x = data
    s, i = topk(q, x, k=12, metric=metric, chunk_size=chunk_size, device="cpu")
    assert s.shape == i.shape == (9, 12)
    assert s.dtype == np.float32 and i.dtype == np.int64
    assert_topk_exact(s, i, q, x, metric)
    assert (np.diff(s, axis=1) <= 0).all()  # best first, larger = better for every metric
    # the chunk size changes the blocks, never the answer
    s0, i0 = topk(q, x, k=12, metric=metric, device="cpu")
    np.testing.assert_array_equal(i, i0)
    np.testing.assert_array_equal(s, s0)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_single_query_route_gives_the_batched_answer(data, metric):
    q, x = data
    s1, i1, st = topk_with_stats(q[2], x, k=7, metric=metric)
    s2, i2, st2 = topk_with_stats(q[2:4], x, k=7, metric=metric, device="cpu", chunk_size=100)
    assert (st.route, st2.route) == ("scan", "fp32") and s1.shape == (1, 7)
    # one answer whatever the route: the same canonical scores, to the bit
    np.testing.assert_array_equal(i1, i2[:1])
    np.testing.assert_array_equal(s1, s2[:1])
    assert_topk_exact(s1, i1, q[2], x, metric)


def test_l2_scores_are_negative_squared_distances():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
    q = np.array([0.0, 0.0], dtype=np.float32)
    s, i = topk(q, x, k=3, metric="l2")
    assert i.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(s, [[0.0, -1.0, -25.0]])
    s, i = topk(q[None], x, k=3, metric="l2", device="cpu")
    np.testing.assert_allclose(s, [[0.0, -1.0, -25.0]])


@pytest.mark.parametrize("n_queries", [1, 4, 40])
@pytest.mark.parametrize("chunk_size", [None, 3, 5])
def test_ties_broken_by_lower_index(n_queries, chunk_size):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((4, 8)).astype(np.float32)
    # item rows: 4 distinct vectors each repeated 5 times, interleaved -> many exact ties,
    # across chunk boundaries and at the k-th place
    x = np.tile(base, (5, 1))
    q = rng.standard_normal((n_queries, 8)).astype(np.float32)
    for metric in ("dot", "cosine", "l2"):
        for k in (1, 3, 7, 20):
            s, i = topk(q, x, k=k, metric=metric, chunk_size=chunk_size, device="cpu")
            assert_ties_by_lower_index(s, i, x)
            assert_topk_exact(s, i, q, x, metric)


def test_exact_ties_on_integer_vectors_match_the_reference_order():
    """Small integers: every float32 score is exact, whatever the summation order, so the
    float64 reference orders ties exactly like the kit must (score desc, index asc)."""
    rng = np.random.default_rng(2)
    q = rng.integers(-2, 3, size=(7, 6)).astype(np.float32)
    x = rng.integers(-2, 3, size=(300, 6)).astype(np.float32)
    for metric in ("dot", "l2"):
        want = np.argsort(-reference_scores(q, x, metric), axis=1, kind="stable")
        for k in (1, 8, 300):
            for qq in (q, q[:1]):
                _, i = topk(qq, x, k=k, metric=metric, device="cpu")
                np.testing.assert_array_equal(i, want[: len(qq), :k], err_msg=f"{metric} k={k}")


def test_all_equal_scores_give_first_k_indices():
    x = np.ones((50, 4), dtype=np.float32)
    for q in (np.ones(4, np.float32), np.ones((3, 4), np.float32)):
        _, i = topk(q, x, k=5, metric="dot", chunk_size=7, device="cpu")
        assert (i == np.arange(5)).all()


def test_torch_in_torch_out(data):
    q, x = data
    s, i = topk(torch.from_numpy(q), torch.from_numpy(x), k=5, metric="dot")
    assert isinstance(s, torch.Tensor) and isinstance(i, torch.Tensor)
    assert i.dtype == torch.int64 and s.shape == (9, 5)
    s_np, i_np = topk(q, x, k=5, metric="dot", device="cpu")
    np.testing.assert_array_equal(i.numpy(), i_np)
    np.testing.assert_array_equal(s.numpy(), s_np)
    s1, _ = topk(torch.from_numpy(q[0]), torch.from_numpy(x), k=5)  # 1-D query -> 2-D
    assert s1.shape == (1, 5)


def test_float64_and_float16_inputs_are_accepted(data):
    q, x = data
    _, i64 = topk(q.astype(np.float64), x.astype(np.float64), k=4, device="cpu")
    _, i32 = topk(q, x, k=4, device="cpu")
    np.testing.assert_array_equal(i64, i32)  # cast to float32 first: the same scores
    q16, x16 = torch.from_numpy(q).half(), torch.from_numpy(x).half()
    s16, i16 = topk(q16, x16, k=4)
    assert i16.shape == (9, 4)
    assert_topk_exact(s16.numpy(), i16.numpy(), q16.float().numpy(), x16.float().numpy(), "cosine")


def test_bad_inputs_raise_clear_errors(data):
    q, x = data
    with pytest.raises(ValueError, match="larger than the number of items"):
        topk(q, x[:3], k=4)
    with pytest.raises(ValueError, match="k must be >= 1"):
        topk(q, x, k=0)
    with pytest.raises(ValueError, match="dimension mismatch"):
        topk(q[:, :8], x, k=3)
    with pytest.raises(ValueError, match="unknown metric"):
        topk(q, x, k=3, metric="manhattan")
    with pytest.raises(TypeError, match="floating"):
        topk(q.astype(np.int64), x, k=3)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        topk(q[None], x, k=3)
    with pytest.raises(ValueError, match="2-D"):
        topk(q, x[0], k=3)
    with pytest.raises(ValueError, match="NaN"):
        topk(np.full(16, np.nan, np.float32), x, k=3)
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        topk([[1.0]], x, k=1)


def test_naive_loop_agrees_with_topk(data):
    q, x = data
    s_ref, i_ref = naive_topk_loop(q[0], x[:200], k=10)
    s, i = topk(q[0], x[:200], k=10, metric="cosine")
    assert_topk_exact(s_ref[None], i_ref[None], q[0], x[:200], "cosine", ulps=1e-3)  # float64
    assert_topk_exact(s, i, q[0], x[:200], "cosine")
    np.testing.assert_allclose(s[0], s_ref, rtol=1e-5, atol=1e-6)


class _FakeEncoder:
    """Deterministic bag-of-letters encoder: enough to test the text path offline."""

    dim = 26

    def encode(self, texts, batch_size=64, show_progress=None):
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for r, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[r, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_index_by_text_and_vectors():
    texts = ["red shoes", "blue jeans", "green bag", "shoes red"]
    idx = Index.from_texts(texts, ["p1", "p2", "p3", "p4"], _FakeEncoder())
    res = idx.search("red shoe", k=2)
    assert len(res) == 1 and {pid for pid, _ in res[0]} == {"p1", "p4"}
    assert res[0][0][0] == "p1"  # exact tie (same letters) -> lower row first
    assert res[0][0][1] == pytest.approx(res[0][1][1])
    many = idx.search(["blue jeans", "green bag"], k=1)
    assert [r[0][0] for r in many] == ["p2", "p3"]
    vec = _FakeEncoder().encode(["green bag"]) * 5.0  # cosine: query norm does not matter
    assert idx.search(vec, k=1)[0][0][0] == "p3"
    assert idx.search(vec, k=1)[0][0][1] == pytest.approx(1.0, abs=1e-6)


def test_index_errors():
    with pytest.raises(ValueError, match="one id per row"):
        Index(np.eye(3, dtype=np.float32), ["a", "b"])
    idx = Index(np.eye(3, dtype=np.float32), ["a", "b", "c"])
    with pytest.raises(ValueError, match="no encoder"):
        idx.search("hello", k=1)
    with pytest.raises(ValueError, match="NaN"):
        Index(np.full((2, 2), np.nan, np.float32), ["a", "b"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(data):
    q, x = data
    for metric in ("cosine", "dot", "l2"):
        s_c, i_c = topk(q, x, k=10, metric=metric, device="cpu")
        s_g, i_g = topk(q, x, k=10, metric=metric, device="cuda", chunk_size=256)
        assert isinstance(s_g, np.ndarray)
        assert_topk_exact(s_g, i_g, q, x, metric)
        np.testing.assert_allclose(s_g, s_c, rtol=1e-5, atol=1e-5)
        st, it = topk(torch.from_numpy(q).cuda(), torch.from_numpy(x).cuda(), k=10, metric=metric)
        assert it.device.type == "cuda"
    x_dup = np.tile(x[:5], (40, 1))
    s_g, i_g = topk(q, x_dup, k=7, metric="dot", device="cuda", chunk_size=16)
    assert_ties_by_lower_index(s_g, i_g, x_dup)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_route_is_exact_and_restores_the_cublas_flag():
    from recsys_kit.ranking import topk_with_stats

    flags = torch.backends.cuda.matmul
    saved = flags.allow_bf16_reduced_precision_reduction
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(50_000, 384, device="cuda", generator=g)
    q = torch.randn(64, 384, device="cuda", generator=g)
    for metric in ("cosine", "dot", "l2"):
        for k in (10, 100):
            s0, i0 = topk(q, x, k, metric=metric, precision="fp32")
            s1, i1, st = topk_with_stats(q, x, k, metric=metric, precision="bf16")
            assert st.route == "bf16"
            assert torch.equal(i1, i0) and torch.equal(s1, s0)  # one answer, whatever the route
    assert flags.allow_bf16_reduced_precision_reduction == saved
