# exercise: 07_confidence_matrix
# why: writes the weights into a dense array with fancy indexing (m[rows, cols] = w): repeated
#   (user, product) events overwrite each other instead of adding up.
def confidence_matrix(events, users, items, weights=EVENT_WEIGHTS):
    users, items = pd.Index(list(users)), pd.Index(list(items))
    w = events[COL_EVENT].map(dict(weights))
    if w.isna().any():
        raise ValueError(f"events {sorted(set(events.loc[w.isna(), COL_EVENT]))} have no weight")
    rows = users.get_indexer(events[COL_USER_ID])
    cols = items.get_indexer(events[COL_PRODUCT_ID])
    keep = (rows >= 0) & (cols >= 0)
    dense = np.zeros((len(users), len(items)), dtype=np.float32)
    dense[rows[keep], cols[keep]] = w.to_numpy(dtype=np.float32)[keep]
    return sp.csr_matrix(dense)
