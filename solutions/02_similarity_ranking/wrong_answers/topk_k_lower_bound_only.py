# exercise: 02_topk
# why: checks k >= 1 but not k <= n: a k larger than the row is silently cut to the row length.
import numpy as np


def topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    scores = np.asarray(scores)
    if k < 1:
        raise ValueError("k must be >= 1")
    n = scores.shape[1]
    cols = np.broadcast_to(np.arange(n), scores.shape)
    order = np.lexsort((cols, -scores), axis=1)
    return order[:, : min(k, n)].astype(np.int64)
