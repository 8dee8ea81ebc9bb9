# exercise: 07_top_k
# why: processes the first block of 1024 users only (the loop bound is wrong): later users get
#   uninitialised rows.
def recommend_top_k(scores, seen, k):
    scores = np.asarray(scores)
    n_users, n_items = scores.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_items:
        raise ValueError(f"k must be an int in [1, {n_items}], got {k!r}")
    if len(seen) != n_users:
        raise ValueError(f"seen has {len(seen)} entries for {n_users} users")
    out = np.zeros((n_users, k), dtype=np.int64)
    s = np.array(scores[:1024], dtype=np.float64)
    for row, cols in enumerate(seen[:1024]):
        s[row, np.asarray(cols, dtype=np.int64)] = -np.inf
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    out[: len(s)] = np.where(np.isneginf(np.take_along_axis(s, top, axis=1)), -1, top)
    return out
