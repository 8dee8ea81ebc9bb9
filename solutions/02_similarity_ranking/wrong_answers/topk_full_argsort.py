# exercise: 02_topk
# why: argsort(-scores) with the default quicksort: ties (also at the k-th place) come out in
#   an arbitrary order instead of lower index first.
import numpy as np


def topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    scores = np.asarray(scores)
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be between 1 and {scores.shape[1]}")
    return np.argsort(-scores, axis=1)[:, :k].astype(np.int64)
