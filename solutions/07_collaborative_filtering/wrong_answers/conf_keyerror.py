# exercise: 07_confidence_matrix
# why: looks the weights up with weights[event]: an unknown event raises KeyError, not the
#   ValueError the text asks for.
def confidence_matrix(events, users, items, weights=EVENT_WEIGHTS):
    users, items = pd.Index(list(users)), pd.Index(list(items))
    w = np.array([weights[e] for e in events[COL_EVENT]], dtype=np.float64)
    rows = users.get_indexer(events[COL_USER_ID])
    cols = items.get_indexer(events[COL_PRODUCT_ID])
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix((w[keep], (rows[keep], cols[keep])), shape=(len(users), len(items)))
    matrix.sum_duplicates()
    return matrix.astype(np.float32)
