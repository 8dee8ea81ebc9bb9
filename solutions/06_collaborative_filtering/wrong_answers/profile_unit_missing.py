# exercise: 06_profile
# why: keeps the -1 that get_indexer gives a product without a vector: it picks the last row of
#   item_vectors instead of ignoring the event.
def behaviour_profile_vector(user_events, item_vectors, item_ids, weights=EVENT_WEIGHTS):
    vectors = np.asarray(item_vectors, dtype=np.float64)
    rows = pd.Index(list(item_ids)).get_indexer(user_events[COL_PRODUCT_ID])
    w = user_events[COL_EVENT].map(dict(weights)).to_numpy(dtype=np.float64)
    total = (w[:, None] * vectors[rows]).sum(axis=0)
    norm = np.linalg.norm(total)
    if norm <= 1e-12:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    return (total / norm).astype(np.float32)
