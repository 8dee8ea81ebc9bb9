# exercise: 07_profile
# why: a weighted mean (np.average) instead of a weighted sum: the two differ by a positive
#   factor, which the normalisation removes.
def behaviour_profile_vector(user_events, item_vectors, item_ids, weights=EVENT_WEIGHTS):
    vectors = np.asarray(item_vectors, dtype=float)
    position = {p: i for i, p in enumerate(item_ids)}
    pairs = [
        (position[p], weights[e])
        for p, e in zip(user_events[COL_PRODUCT_ID], user_events[COL_EVENT])
        if p in position
    ]
    if not pairs:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    rows, w = zip(*pairs)
    mean = np.average(vectors[list(rows)], axis=0, weights=np.asarray(w, dtype=float))
    norm = float(np.sqrt(mean @ mean))
    return (
        (mean / norm).astype(np.float32) if norm > 1e-12 else np.zeros(vectors.shape[1], np.float32)
    )
