# exercise: 07_top_k
# why: one user at a time with np.lexsort (score descending, then column), seen items removed.
def recommend_top_k(scores, seen, k):
    scores = np.asarray(scores)
    n_users, n_items = scores.shape
    if type(k) is bool or not isinstance(k, (int, np.integer)) or k < 1 or k > n_items:
        raise ValueError(f"k={k!r}: need an int between 1 and {n_items}")
    if len(seen) != n_users:
        raise ValueError(f"seen must have one entry per user ({n_users}), got {len(seen)}")
    out = np.full((n_users, k), -1, dtype=np.int64)
    cols = np.arange(n_items)
    for u in range(n_users):
        allowed = np.ones(n_items, dtype=bool)
        allowed[np.asarray(seen[u], dtype=np.int64)] = False
        keep = cols[allowed]
        order = keep[np.lexsort((keep, -scores[u, keep].astype(np.float64)))][:k]
        out[u, : len(order)] = order
    return out
