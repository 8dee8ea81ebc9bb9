# exercise: 06_profile
# why: handles "no event" but not a sum that cancels to the zero vector: 0 / 0 gives nan.
def behaviour_profile_vector(user_events, item_vectors, item_ids, weights=EVENT_WEIGHTS):
    vectors = np.asarray(item_vectors, dtype=np.float64)
    if len(user_events) == 0:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    rows = pd.Index(list(item_ids)).get_indexer(user_events[COL_PRODUCT_ID])
    w = user_events[COL_EVENT].map(dict(weights)).to_numpy(dtype=np.float64)
    keep = rows >= 0
    total = (w[keep, None] * vectors[rows[keep]]).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return (total / np.linalg.norm(total)).astype(np.float32)
