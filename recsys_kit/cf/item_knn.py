"""Item-item collaborative filtering: "people who bought this also bought ...".

Two items are similar when the same users interacted with them. With the item columns
``x_i`` of the user x item matrix, the (shrunk) cosine similarity is

    sim(i, j) = x_i . x_j / (||x_i|| ||x_j|| + shrinkage)

where ``shrinkage`` pulls similarities supported by few co-interactions towards 0 (Koren
2008). Each item keeps only its ``k_neighbors`` most similar items (a sparse matrix ``S``), and
a user's score for item ``j`` is ``sum_i x_ui S[i, j]``: the similarity-weighted vote of what
they interacted with. Everything is sparse products, no Python loop over users or items; the
similarity is built a block of items at a time and pruned to ``k_neighbors`` per block, so its
memory stays bounded on real catalogues (:data:`SIMILARITY_BLOCK_NNZ`).

Example:
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1.0, 1.0, 0], [1.0, 1.0, 0], [0, 0, 1.0]])
    >>> knn = ItemKNN(k_neighbors=2).fit(X)
    >>> knn.recommend([0], k=1, exclude_seen=False)[1].tolist()
    [[0]]
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_kit.cf.base import Recommender

__all__ = ["keep_top_per_row", "SIMILARITY_BLOCK_NNZ", "item_block_rows", "ItemKNN"]


def keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row of a CSR matrix (ties: lower column first).

    Vectorised: one global sort by (row, -value, column), then a rank within each row.

    Example:
        >>> m = sp.csr_matrix([[0.1, 0.5, 0.3]])
        >>> keep_top_per_row(m, 2).toarray().tolist()
        [[0.0, 0.5, 0.30000001192092896]]
    """
    m = matrix.tocsr().astype(np.float32)
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(len(order)) - m.indptr[rows[order]]  # rows[order] is sorted like rows
    keep = order[rank < k]
    out = sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out


#: Co-interaction products (stored cells) one block of :meth:`ItemKNN.fit` may hold.
SIMILARITY_BLOCK_NNZ = 4_000_000


def item_block_rows(matrix: sp.csr_matrix, budget: int | None = None) -> int:
    """Item rows per block so one block's item x item products stay near ``budget`` cells.

    The products of all items number ``sum_u n_u^2`` (``n_u`` = the user's items); a block of
    ``b`` of the ``n`` items holds about ``b / n`` of them. ``budget`` defaults to
    :data:`SIMILARITY_BLOCK_NNZ` (read at call time).
    """
    budget = SIMILARITY_BLOCK_NNZ if budget is None else budget
    n_items = matrix.shape[1]
    per_user = np.diff(matrix.indptr).astype(np.float64)
    total = max(1.0, float(np.sum(per_user**2)))
    return int(np.clip(n_items * budget / total, 1, n_items))


class ItemKNN(Recommender):
    """Item-based k-nearest-neighbour recommender with shrunk cosine similarity.

    Args:
        k_neighbors: similar items kept per item (larger = smoother, slower).
        shrinkage: added to the cosine denominator; 0 gives the plain cosine.

    Attributes:
        similarity: the (n_items, n_items) sparse similarity matrix after :meth:`fit`; row
            ``i`` holds item ``i``'s neighbours, the diagonal is 0.

    Example:
        >>> import scipy.sparse as sp
        >>> S = ItemKNN(k_neighbors=1).fit(sp.csr_matrix([[1.0, 1.0], [0, 1.0]])).similarity
        >>> round(float(S[0, 1]), 3)
        0.707
    """

    def __init__(self, k_neighbors: int = 50, shrinkage: float = 0.0) -> None:
        is_int = isinstance(k_neighbors, (int, np.integer)) and not isinstance(k_neighbors, bool)
        if not is_int or k_neighbors < 1:
            raise ValueError(f"k_neighbors must be a positive int, got {k_neighbors!r}")
        k_neighbors = int(k_neighbors)  # numpy ints (e.g. from a parameter grid) welcome
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
        self.k_neighbors = k_neighbors
        self.shrinkage = float(shrinkage)
        self.similarity: sp.csr_matrix | None = None

    def __repr__(self) -> str:
        return f"ItemKNN(k_neighbors={self.k_neighbors}, shrinkage={self.shrinkage})"

    def _fit(self, matrix: sp.csr_matrix) -> None:
        items = matrix.T.tocsr().astype(np.float64)  # rows = items
        norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())
        # Blocks of item rows: each block's co-interaction products (sparse) are pruned to the
        # top k_neighbors before the next, so memory is one block + what is kept.
        step = item_block_rows(matrix)
        parts = []
        for start in range(0, items.shape[0], step):
            gram = (items[start : start + step] @ items.T).tocoo()
            rows = gram.row + start
            denom = norms[rows] * norms[gram.col] + self.shrinkage
            sim = np.divide(gram.data, denom, out=np.zeros_like(gram.data), where=denom > 0)
            keep = (rows != gram.col) & (sim != 0)  # an item is not its own neighbour
            block = sp.csr_matrix((sim[keep], (gram.row[keep], gram.col[keep])), shape=gram.shape)
            parts.append(keep_top_per_row(block, self.k_neighbors))
        self.similarity = sp.vstack(parts, format="csr")

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.train_matrix[users] @ self.similarity).toarray()

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to one item (its stored neighbours, best first).

        Returns:
            ``(similarities, items)`` 1-D arrays; shorter than ``k`` when the item has fewer
            neighbours with a positive similarity.
        """
        self._fitted()
        row = self.similarity[item]
        order = np.lexsort((row.indices, -row.data))[:k]
        return row.data[order], row.indices[order].astype(np.int64)
