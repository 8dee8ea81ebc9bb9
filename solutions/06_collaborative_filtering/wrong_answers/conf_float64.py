# exercise: 06_confidence_matrix
# why: leaves the matrix in float64 (the weights' dtype) instead of float32.
def confidence_matrix(events, users, items, weights=EVENT_WEIGHTS):
    users, items = pd.Index(list(users)), pd.Index(list(items))
    w = events[COL_EVENT].map(dict(weights))
    if w.isna().any():
        raise ValueError(f"events {sorted(set(events.loc[w.isna(), COL_EVENT]))} have no weight")
    rows = users.get_indexer(events[COL_USER_ID])
    cols = items.get_indexer(events[COL_PRODUCT_ID])
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix(
        (w.to_numpy(dtype=np.float64)[keep], (rows[keep], cols[keep])),
        shape=(len(users), len(items)),
    )
    matrix.sum_duplicates()
    return matrix
