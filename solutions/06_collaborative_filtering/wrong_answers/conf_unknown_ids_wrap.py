# exercise: 06_confidence_matrix
# why: maps ids with get_indexer but never drops the -1 of unknown users and products, so
#   their events land in the last row or column.
def confidence_matrix(events, users, items, weights=EVENT_WEIGHTS):
    users, items = pd.Index(list(users)), pd.Index(list(items))
    w = events[COL_EVENT].map(dict(weights))
    if w.isna().any():
        raise ValueError(f"events {sorted(set(events.loc[w.isna(), COL_EVENT]))} have no weight")
    rows = users.get_indexer(events[COL_USER_ID]) % max(len(users), 1)
    cols = items.get_indexer(events[COL_PRODUCT_ID]) % max(len(items), 1)
    matrix = sp.csr_matrix(
        (w.to_numpy(dtype=np.float64), (rows, cols)), shape=(len(users), len(items))
    )
    matrix.sum_duplicates()
    return matrix.astype(np.float32)
