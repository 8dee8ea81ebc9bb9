# exercise: 02_topk
# why: takes argpartition's k candidates as they come and sorts them stably by score: equal
#   scores keep argpartition's arbitrary order, and a tie at the k-th place may let a higher
#   index in.
import numpy as np


def topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    scores = np.asarray(scores)
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be between 1 and {scores.shape[1]}")
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)
