# exercise: 06_profile
# why: sums the vectors without the event weights (a view counts as much as a purchase).
def behaviour_profile_vector(user_events, item_vectors, item_ids, weights=EVENT_WEIGHTS):
    vectors = np.asarray(item_vectors, dtype=np.float64)
    rows = pd.Index(list(item_ids)).get_indexer(user_events[COL_PRODUCT_ID])
    rows = rows[rows >= 0]
    total = vectors[rows].sum(axis=0)
    norm = np.linalg.norm(total)
    if norm <= 1e-12:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    return (total / norm).astype(np.float32)
