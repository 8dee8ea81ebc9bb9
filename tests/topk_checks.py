"""Tie-aware checks of top-k results that hold on any CPU (imported by the ranking tests).

Two float computations of the same score may differ in their last bits (another summation
order, another SIMD width), so items whose true scores are equal or within float32 rounding may
come back in either order. These checks compare against an exact float64 reference and allow
exactly that freedom, nothing more:

* the returned scores match the reference scores of the returned items (within ``tol``);
* the multiset of returned reference scores equals the true top-k's (within ``tol``);
* at every score boundary (a gap wider than ``2 tol`` in the true top-k, and at the k-th place),
  the set of items above it is the true set: order is free only among near-equal scores;
* the returned order is best first (within ``tol``).

Exact ties (identical item rows) are a stricter matter: :func:`assert_ties_by_lower_index`.
"""

from __future__ import annotations

import numpy as np

_U32 = 2.0**-24


def reference_scores(q: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    """Full (Q, N) score matrix in float64, as the kit defines it (larger = better)."""
    q, x = np.atleast_2d(q).astype(np.float64), x.astype(np.float64)
    if metric == "dot":
        return q @ x.T
    if metric == "cosine":
        qn = np.maximum(np.linalg.norm(q, axis=1), 1e-12)[:, None]
        xn = np.maximum(np.linalg.norm(x, axis=1), 1e-12)[None]
        return (q @ x.T) / qn / xn
    return -((q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None])


def rounding_tol(q: np.ndarray, x: np.ndarray, metric: str, ulps: float = 4.0) -> np.ndarray:
    """Per query, ``ulps`` x the float32 rounding bound of one score: ``d u ||q|| max ||x||``
    (cosine: ``d u``; l2: ``d u (||q|| + max ||x||)^2``), the scale at which two summation
    orders may disagree."""
    q = np.atleast_2d(q).astype(np.float64)
    d = q.shape[1]
    qn = np.linalg.norm(q, axis=1)
    xn = float(np.linalg.norm(x.astype(np.float64), axis=1).max())
    scale = {"cosine": np.ones_like(qn), "dot": qn * xn, "l2": (qn + xn) ** 2}[metric]
    return ulps * d * _U32 * scale + 1e-30


def assert_topk_exact(
    scores: np.ndarray,
    idx: np.ndarray,
    q: np.ndarray,
    x: np.ndarray,
    metric: str,
    ulps: float = 4.0,
) -> None:
    """``(scores, idx)`` is a correct top-k of ``q`` against ``x`` up to float32 rounding."""
    scores, idx = np.atleast_2d(np.asarray(scores)), np.atleast_2d(np.asarray(idx))
    ref = reference_scores(q, x, metric)
    tol = rounding_tol(q, x, metric, ulps)
    k = idx.shape[1]
    assert idx.shape == scores.shape == (ref.shape[0], k), (idx.shape, scores.shape)
    for r in range(ref.shape[0]):
        _check_row(scores[r], idx[r], ref[r], float(tol[r]), r)


def _check_row(s: np.ndarray, i: np.ndarray, ref: np.ndarray, tol: float, r: int) -> None:
    k = len(i)
    assert len(set(i.tolist())) == k, f"row {r}: an item is returned twice: {i}"
    got = ref[i]
    np.testing.assert_allclose(s, got, rtol=0, atol=tol, err_msg=f"row {r}: scores")
    assert (np.diff(got) <= 2 * tol).all(), f"row {r}: not best first: {got}"
    order = np.argsort(-ref, kind="stable")
    want = ref[order[:k]]
    np.testing.assert_allclose(np.sort(got)[::-1], want, rtol=0, atol=2 * tol,
                               err_msg=f"row {r}: not the top-k scores")  # fmt: skip
    # every boundary with a clear gap below it (and the k-th place) splits the same sets
    below = ref[order[k]] if k < len(ref) else -np.inf
    gaps = np.append(want[:-1] - want[1:], want[-1] - below)
    for j in np.flatnonzero(gaps > 4 * tol):
        assert set(i[: j + 1].tolist()) == set(order[: j + 1].tolist()), (
            f"row {r}: the best {j + 1} differ from the exact ones"
        )


def assert_ties_by_lower_index(scores: np.ndarray, idx: np.ndarray, x: np.ndarray) -> None:
    """Exact ties go to the lower index: items with *equal returned scores* come in increasing
    index order, and of a group of identical item rows the lowest indices are the ones returned
    (identical rows must score identically, whatever the kernel)."""
    scores, idx = np.atleast_2d(scores), np.atleast_2d(idx)
    groups: dict[bytes, list[int]] = {}
    for j, row in enumerate(np.ascontiguousarray(x)):
        groups.setdefault(row.tobytes(), []).append(j)
    group_of = {j: key for key, members in groups.items() for j in members}
    for r in range(idx.shape[0]):
        s, i = scores[r], idx[r]
        tied = s[1:] == s[:-1]
        assert (i[1:][tied] > i[:-1][tied]).all(), f"row {r}: equal scores not by index: {i}"
        picked: dict[bytes, list[int]] = {}
        for j in i.tolist():
            picked.setdefault(group_of[j], []).append(j)
        for key, members in picked.items():
            assert sorted(members) == groups[key][: len(members)], (
                f"row {r}: copies {sorted(members)} returned, lower copies exist"
            )
            got = s[np.isin(i, members)]
            assert (got == got[0]).all(), f"row {r}: identical items scored differently: {got}"
