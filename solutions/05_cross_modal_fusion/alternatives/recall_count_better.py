# exercise: 05_recall
# why: normalises only the items (scaling a query row does not change its ranking), counts the
#   other items at least as similar with the diagonal masked out.
import numpy as np


def paired_recall(queries, items, k):
    q, it = np.asarray(queries, float), np.asarray(items, float)
    if q.ndim != 2 or it.ndim != 2 or q.shape != it.shape:
        raise ValueError(f"need two (n, d) arrays of one shape, got {q.shape} and {it.shape}")
    n = q.shape[0]
    if k < 1 or k > n:
        raise ValueError(f"k={k} must be between 1 and {n}")
    it = it / np.maximum(np.sqrt((it**2).sum(axis=1, keepdims=True)), 1e-12)
    q = q / np.maximum(np.sqrt((q**2).sum(axis=1, keepdims=True)), 1e-12)
    sims = q @ it.T
    own = sims[np.arange(n), np.arange(n)]
    others = (sims >= own[:, None]) & ~np.eye(n, dtype=bool)
    return float(np.mean(1 + others.sum(axis=1) <= k))
