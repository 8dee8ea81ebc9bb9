# exercise: 04_recall
# why: ranks the queries for each item (column-wise, image-to-text) instead of the items for
#   each query.
import numpy as np


def paired_recall(queries, items, k):
    q = np.asarray(queries, dtype=np.float64)
    it = np.asarray(items, dtype=np.float64)
    if q.ndim != 2 or q.shape != it.shape:
        raise ValueError("queries and items must be paired (n, d) arrays")
    if not 1 <= k <= len(q):
        raise ValueError(f"k must be in [1, {len(q)}]")
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    it = it / np.maximum(np.linalg.norm(it, axis=1, keepdims=True), 1e-12)
    sims = q @ it.T
    rank = (sims >= np.diag(sims)[None, :]).sum(axis=0)
    return float((rank <= k).mean())
