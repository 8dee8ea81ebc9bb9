# exercise: 04_recall
# why: ranks by raw dot products, assuming the rows are already normalised (the text says not to).
import numpy as np


def paired_recall(queries, items, k):
    q = np.asarray(queries, dtype=np.float64)
    it = np.asarray(items, dtype=np.float64)
    if q.ndim != 2 or q.shape != it.shape:
        raise ValueError("queries and items must be paired (n, d) arrays")
    if not 1 <= k <= len(q):
        raise ValueError(f"k must be in [1, {len(q)}]")
    sims = q @ it.T
    rank = (sims >= np.diag(sims)[:, None]).sum(axis=1)
    return float((rank <= k).mean())
