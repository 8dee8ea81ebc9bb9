"""BPR's per-sample SGD loop compiled with numba: :class:`~recsys_kit.cf.BPR`'s fast CPU engine.

Rendle's original algorithm (and the ``implicit`` library's): one triple at a time, user ``u``,
an item ``i`` they interacted with, an item ``j`` they did not, and a stochastic gradient step
on ``-log sigmoid(s_ui - s_uj)`` with ``s_ui = x_u . y_i + b_i``, applied at once, so the next
triple already sees it. A Python loop would take minutes per epoch; numba compiles these
functions to machine code on first use (about 1 s, cached on disk when a cache folder is
writable: next to this file, else numba's per-user folder; in a read-only sandbox every
process compiles again).

The loop is single-threaded and deterministic: same seed, same factors, bit for bit. Several
threads updating shared rows without locks ("Hogwild", what ``implicit`` does with
``num_threads > 1``) would give up that reproducibility for a speed-up the course machines
(2 shared cores) barely see.

numba is optional (``pip install "recsys-kit[fast]"``): without it this module still imports,
:func:`numba_available` says ``False`` and the functions run as plain (slow) Python, which is
enough to read them and to check one update by hand.

Example:
    >>> import numpy as np
    >>> x, y = np.ones((1, 2), np.float32), np.zeros((2, 2), np.float32)
    >>> b = np.zeros(2, np.float32)
    >>> round(float(bpr_update(x, y, b, 0, 0, 1, np.float32(0.1), np.float32(0.0))), 4)
    0.6931
    >>> y[0].tolist(), b.tolist()  # the positive moves towards the user, its bias up
    ([0.05000000074505806, 0.05000000074505806], [0.05000000074505806, -0.05000000074505806])
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from recsys_kit.jit import INSTALL_HINT, numba_available
from recsys_kit.jit import jit as _jit

__all__ = [
    "INSTALL_HINT",
    "NEGATIVE_TRIES",
    "numba_available",
    "draw_negative",
    "bpr_update",
    "bpr_epoch",
    "bpr_sgd_fit",
]

#: Draws per negative before taking the last one (a user who touched almost every item).
NEGATIVE_TRIES = 20


@_jit
def _next_u64(state: np.ndarray) -> np.uint64:
    """splitmix64: the next 64 random bits of the generator held in ``state[0]``."""
    z = state[0] + np.uint64(0x9E3779B97F4A7C15)
    state[0] = z
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@_jit
def _randint(state: np.ndarray, n: int) -> int:
    """Uniform integer in ``[0, n)`` (``n < 2**32``; Lemire's multiply-shift)."""
    high = _next_u64(state) >> np.uint64(32)
    return np.int64((high * np.uint64(n)) >> np.uint64(32))


@_jit
def draw_negative(
    indptr: np.ndarray, indices: np.ndarray, u: int, n_items: int, state: np.ndarray
) -> int:
    """A uniform item outside user ``u``'s sorted CSR row.

    Each draw is checked by binary search in the row; after :data:`NEGATIVE_TRIES` draws that
    all hit the user's own items, the last draw is kept (as the torch engine does).

    Args:
        indptr, indices: the CSR pattern (int64, sorted indices).
        u: the user (row).
        n_items: number of items (columns).
        state: the random generator (a uint64 array of length 1), advanced in place.

    Returns:
        The item.
    """
    start, end = indptr[u], indptr[u + 1]
    j = 0
    for _ in range(NEGATIVE_TRIES):
        j = _randint(state, n_items)
        lo, hi = start, end
        while lo < hi:  # first position with indices[pos] >= j
            mid = (lo + hi) >> 1
            if indices[mid] < j:
                lo = mid + 1
            else:
                hi = mid
        if lo == end or indices[lo] != j:
            return j
    return j


@_jit
def bpr_update(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    u: int,
    i: int,
    j: int,
    lr: np.float32,
    reg: np.float32,
) -> float:
    """Rendle's SGD step for one triple, in place: ``theta += lr (g dtheta - reg theta)``.

    ``g = sigmoid(-(s_ui - s_uj))`` and the step touches ``x_u``, ``y_i``, ``y_j``, ``b_i`` and
    ``b_j`` (the biases regularised like the factors). float32 arithmetic, like ``implicit``.

    Args:
        user_factors, item_factors: float32 (n_users, f) and (n_items, f), updated in place.
        item_bias: float32 (n_items,), updated in place.
        u, i, j: the user, the positive item and the negative item.
        lr, reg: learning rate and regularisation, as ``np.float32``.

    Returns:
        The triple's loss ``-log sigmoid(s_ui - s_uj)`` before the step.
    """
    x, yi, yj = user_factors[u], item_factors[i], item_factors[j]
    d = item_bias[i] - item_bias[j]
    for k in range(x.shape[0]):
        d += x[k] * (yi[k] - yj[k])
    g = np.float32(1.0) / (np.float32(1.0) + np.exp(d))  # sigmoid(-d)
    for k in range(x.shape[0]):
        xk, a, b = x[k], yi[k], yj[k]
        x[k] = xk + lr * (g * (a - b) - reg * xk)
        yi[k] = a + lr * (g * xk - reg * a)
        yj[k] = b + lr * (-g * xk - reg * b)
    bi, bj = item_bias[i], item_bias[j]
    item_bias[i] = bi + lr * (g - reg * bi)
    item_bias[j] = bj + lr * (-g - reg * bj)
    dd = float(d)  # softplus(-d), computed without overflow
    return math.log1p(math.exp(-dd)) if dd > 0 else -dd + math.log1p(math.exp(dd))


@_jit
def bpr_epoch(
    indptr: np.ndarray,
    indices: np.ndarray,
    users: np.ndarray,
    order: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    lr: np.float32,
    reg: np.float32,
    state: np.ndarray,
) -> float:
    """One epoch: every stored cell once, in a fresh random order, one negative each.

    Args:
        indptr, indices: the CSR pattern (rows sorted), int64.
        users: the row of each stored cell, int64.
        order: a permutation of the cells (int64), shuffled again in place (Fisher-Yates).
        user_factors, item_factors, item_bias: the model, updated in place.
        lr, reg: as in :func:`bpr_update`.
        state: the random generator (a uint64 array of length 1), advanced in place.

    Returns:
        The summed loss of the epoch's triples.
    """
    n_items = item_factors.shape[0]
    for k in range(len(order) - 1, 0, -1):
        r = _randint(state, k + 1)
        order[k], order[r] = order[r], order[k]
    total = 0.0
    for t in range(len(order)):
        c = order[t]
        u = users[c]
        j = draw_negative(indptr, indices, u, n_items, state)
        total += bpr_update(user_factors, item_factors, item_bias, u, indices[c], j, lr, reg)
    return total


def bpr_sgd_fit(
    matrix: sp.csr_matrix,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    lr: float,
    regularization: float,
    epochs: Iterable,
    seed: int,
) -> list[float]:
    """Train in place with :func:`bpr_epoch`, one call per item of ``epochs``.

    Args:
        matrix: the interactions (CSR, sorted indices; values ignored).
        user_factors, item_factors, item_bias: float32 starting model, updated in place.
        lr, regularization: Rendle's step size and weight decay.
        epochs: an iterable with one item per epoch (a ``range`` or a progress bar over it).
        seed: seeds the visiting order and the negatives.

    Returns:
        The mean triple loss of each epoch.
    """
    if not numba_available():
        raise ImportError(f"BPR(engine='numba') needs numba: {INSTALL_HINT}")
    indptr = matrix.indptr.astype(np.int64)
    indices = matrix.indices.astype(np.int64)
    users = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(indptr))
    order = np.arange(len(indices), dtype=np.int64)
    state = np.array([np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]])
    lr32, reg32 = np.float32(lr), np.float32(regularization)
    losses = []
    for _ in epochs:
        total = bpr_epoch(
            indptr, indices, users, order, user_factors, item_factors, item_bias, lr32, reg32, state
        )
        losses.append(total / len(indices))
    return losses
