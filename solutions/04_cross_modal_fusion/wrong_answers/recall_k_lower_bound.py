# exercise: 04_recall
# why: checks k >= 1 but not k <= n (a k larger than the set silently gives 1.0).
import numpy as np


def paired_recall(queries, items, k):
    q = np.asarray(queries, dtype=np.float64)
    it = np.asarray(items, dtype=np.float64)
    if q.ndim != 2 or q.shape != it.shape:
        raise ValueError("queries and items must be paired (n, d) arrays")
    if k < 1:
        raise ValueError("k must be >= 1")
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    it = it / np.maximum(np.linalg.norm(it, axis=1, keepdims=True), 1e-12)
    sims = q @ it.T
    rank = (sims >= np.diag(sims)[:, None]).sum(axis=1)
    return float((rank <= k).mean())
