"""The recommender contract shared by every CF model, and the popularity baseline.

Every model is fitted on the user x item matrix of :func:`recsys_kit.cf.build_matrix` and
answers with matrix *rows and columns* (integers); ``user_index``/``item_index`` from
``build_matrix`` turn them back into ids. A model only has to say how it scores items for a
batch of users (:meth:`Recommender.score`); :meth:`Recommender.recommend` does the rest:
mask what the user already saw, take the top ``k``, break ties by the lower item column
(the convention of :func:`recsys_kit.ranking.topk`).

Example:
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1.0, 0, 0], [1.0, 1.0, 0], [0, 1.0, 1.0]])
    >>> scores, items = PopularityRecommender().fit(X).recommend([0], k=2)
    >>> items.tolist(), scores.tolist()
    ([[1, 2]], [[2.0, 1.0]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_kit.threads import thread_limit

__all__ = [
    "SCORE_BLOCK_BYTES",
    "check_matrix",
    "block_rows",
    "topk_rows",
    "Recommender",
    "PopularityRecommender",
]

#: Bytes of dense scores one block of users may hold in :meth:`Recommender.recommend` (the
#: score block is the only thing that grows with the catalogue; 8 MiB = 173 users x 12k items).
SCORE_BLOCK_BYTES = 8 * 2**20


def check_matrix(matrix: Any) -> sp.csr_matrix:
    """Validate a user x item matrix and return it as float32 CSR.

    Raises:
        TypeError / ValueError: on a non-sparse input, negative or non-finite values.
    """
    if isinstance(matrix, np.ndarray):
        raise TypeError(
            "expected a scipy.sparse matrix (users x items), got a dense numpy array; "
            "wrap it with scipy.sparse.csr_matrix(...) or build it with build_matrix()"
        )
    if not sp.issparse(matrix):
        raise TypeError(
            f"expected a scipy.sparse matrix from build_matrix(), got {type(matrix).__name__}"
        )
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"the matrix must be 2-D and non-empty, got shape {matrix.shape}")
    m = sp.csr_matrix(matrix, dtype=np.float32)
    if m.nnz and (not np.isfinite(m.data).all() or (m.data < 0).any()):
        raise ValueError(
            "matrix values must be finite and >= 0 (confidence weights); check the event weights"
        )
    m.sum_duplicates()
    m.eliminate_zeros()  # an explicit 0 is "no interaction", not a seen item
    m.sort_indices()
    return m


def block_rows(n_cols: int, budget: int | None = None) -> int:
    """Rows of float32 scores over ``n_cols`` columns that fit ``budget`` bytes (at least 1).

    ``budget`` defaults to :data:`SCORE_BLOCK_BYTES` (read at call time).
    """
    budget = SCORE_BLOCK_BYTES if budget is None else budget
    return max(1, budget // (4 * max(1, n_cols)))


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of each row, best first, ties by the lower column.

    The kit's batched selection (:mod:`recsys_kit.ranking`): per row, a lower bound of the
    ``k``-th largest value from the maxima of column groups, then only the columns at or above
    it are sorted exactly, so a tie at the ``k``-th place costs only its own row (every tied
    column is a candidate; the sort by (score, column) picks the lower columns).

    Args:
        scores: (n_rows, n_cols) float array; ``-inf`` marks excluded entries (no NaN).
        k: 1 <= k <= n_cols.

    Returns:
        ``(scores, indices)``, each (n_rows, k): scores in the input's float dtype, int64 columns.

    Example:
        >>> topk_rows(np.array([[0.5, 0.9, 0.5]]), 2)[1].tolist()
        [[1, 0]]
    """
    import torch

    from recsys_kit.topk_engine import block_topk, order_rows, select_candidates

    arr = np.asarray(scores)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_rows, n_cols), got shape {arr.shape}")
    n_cols = arr.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_cols:
        raise ValueError(f"k must be an int in [1, {n_cols}], got {k!r}")
    k = int(k)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    with torch.inference_mode():
        if k >= n_cols or n_cols // 16 < 2 * k:  # small rows: direct top-k, ties fixed per row
            vals, idx = block_topk(t, k)
        else:
            vals, idx, _ = select_candidates(t, k)  # (R, W >= k) incl. every tie at the k-th place
            vals, idx = order_rows(vals, idx)
            vals, idx = vals[:, :k], idx[:, :k]
    return np.ascontiguousarray(vals.numpy()), np.ascontiguousarray(idx.numpy())


class Recommender:
    """Base class: subclasses implement :meth:`_fit` and :meth:`_score`.

    Attributes:
        train_matrix: the CSR matrix passed to :meth:`fit` (used to exclude seen items).
    """

    train_matrix: sp.csr_matrix | None = None
    #: Threads for torch/BLAS while fitting and recommending. 1 by default: the course's
    #: machines are shared 2-core ones, where spinning thread pools of several processes
    #: made BPR 10-90x and ALS 5-10x slower than one thread (measured); ``None`` leaves
    #: the libraries' own defaults (all cores).
    num_threads: int | None = 1

    def fit(self, matrix: sp.spmatrix) -> Recommender:
        """Fit on a user x item confidence matrix from :func:`recsys_kit.cf.build_matrix`.

        Returns:
            ``self``, so ``model = ALS().fit(X)`` reads naturally.
        """
        self.train_matrix = check_matrix(matrix)
        with thread_limit(self.num_threads):
            self._fit(self.train_matrix)
        return self

    def _fit(self, matrix: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return self.train_matrix is not None

    @property
    def n_users(self) -> int:
        return self._fitted().shape[0]

    @property
    def n_items(self) -> int:
        return self._fitted().shape[1]

    def _fitted(self) -> sp.csr_matrix:
        if self.train_matrix is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call .fit(matrix) first")
        return self.train_matrix

    def _user_rows(self, user_ids: int | Sequence[int] | np.ndarray) -> np.ndarray:
        n = self.n_users
        users = np.atleast_1d(np.asarray(user_ids))
        if users.ndim != 1 or (users.size and users.dtype.kind not in "iu"):
            raise TypeError(
                "user_ids must be integer matrix rows; map ids with "
                "user_index.get_indexer(ids) (user_index comes from build_matrix)"
            )
        if users.size and (users.min() < 0 or users.max() >= n):
            raise IndexError(
                f"user rows must be in [0, {n}); got {int(users.min())}..{int(users.max())}. "
                "A -1 from get_indexer means a user the model never saw (cold start)."
            )
        return users.astype(np.int64)

    def score(self, user_ids: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """Scores of every item for some users (larger = better).

        Args:
            user_ids: matrix rows of the users.

        Returns:
            float32 array (n_users, n_items).
        """
        users = self._user_rows(user_ids)
        return np.asarray(self._score(users), dtype=np.float32)

    def recommend(
        self,
        user_ids: int | Sequence[int] | np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user.

        Args:
            user_ids: matrix rows of the users (``user_index.get_indexer(ids)``).
            k: list length, 1 <= k <= n_items.
            exclude_seen: drop the items the user interacted with in the training matrix.
                If a user has seen so many items that fewer than ``k`` are left, the list is
                padded with seen items scored ``-inf`` (drop non-finite scores to get them out).

        Returns:
            ``(scores, items)``: float32 scores and int64 item columns, each (n_users, k),
            best first, ties by the lower column. Users are scored a block at a time
            (:data:`SCORE_BLOCK_BYTES` of scores), so memory does not grow with their number.
        """
        matrix = self._fitted()
        n_items = matrix.shape[1]
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_items:
            raise ValueError(f"k must be an int in [1, {n_items}] (the number of items), got {k!r}")
        users = self._user_rows(user_ids)
        out_s = np.empty((len(users), k), dtype=np.float32)
        out_i = np.empty((len(users), k), dtype=np.int64)
        step = block_rows(n_items)
        with thread_limit(self.num_threads):
            for start in range(0, len(users), step):
                block = users[start : start + step]
                scores = np.array(self._score(block), dtype=np.float32, order="C")  # writable copy
                if exclude_seen:
                    seen = matrix[block]
                    rows = np.repeat(np.arange(len(block)), np.diff(seen.indptr))
                    scores[rows, seen.indices] = -np.inf
                s, i = topk_rows(scores, k)
                out_s[start : start + len(block)] = s
                out_i[start : start + len(block)] = i
        return out_s, out_i


class PopularityRecommender(Recommender):
    """Recommend the most popular items to everybody: the baseline every model must beat.

    Args:
        weighted: rank by total confidence weight (sum of event weights) instead of by the
            number of distinct users who interacted.

    Attributes:
        item_popularity: float32 (n_items,) popularity scores after :meth:`fit`.

    Example:
        >>> import scipy.sparse as sp
        >>> PopularityRecommender().fit(sp.csr_matrix([[1.0, 0], [5.0, 1.0]])).item_popularity
        array([2., 1.], dtype=float32)
    """

    def __init__(self, weighted: bool = False) -> None:
        self.weighted = weighted
        self.item_popularity: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"PopularityRecommender(weighted={self.weighted})"

    def _fit(self, matrix: sp.csr_matrix) -> None:
        if self.weighted:
            pop = np.asarray(matrix.sum(axis=0)).ravel()
        else:
            pop = np.bincount(matrix.indices, minlength=matrix.shape[1])
        self.item_popularity = pop.astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_popularity, (len(users), len(self.item_popularity)))
