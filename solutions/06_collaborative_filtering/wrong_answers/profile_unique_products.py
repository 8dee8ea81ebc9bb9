# exercise: 06_profile
# why: drops repeated (product, event) rows, so an event repeated on a product counts once.
def behaviour_profile_vector(user_events, item_vectors, item_ids, weights=EVENT_WEIGHTS):
    vectors = np.asarray(item_vectors, dtype=np.float64)
    events = user_events.drop_duplicates(subset=[COL_PRODUCT_ID, COL_EVENT])
    rows = pd.Index(list(item_ids)).get_indexer(events[COL_PRODUCT_ID])
    w = events[COL_EVENT].map(dict(weights)).to_numpy(dtype=np.float64)
    keep = rows >= 0
    total = (w[keep, None] * vectors[rows[keep]]).sum(axis=0)
    norm = np.linalg.norm(total)
    if norm <= 1e-12:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    return (total / norm).astype(np.float32)
