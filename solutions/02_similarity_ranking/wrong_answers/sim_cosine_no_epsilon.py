# exercise: 02_similarity
# why: divides the dot products by the raw product of norms: a zero vector gives 0 / 0 = nan
#   instead of a cosine of 0.
import numpy as np


def similarity_matrix(queries: np.ndarray, items: np.ndarray, metric: str = "cosine") -> np.ndarray:
    if metric not in ("cosine", "dot", "l2"):
        raise ValueError(f"unknown metric {metric!r}")
    q = np.asarray(queries, dtype=np.float32)
    x = np.asarray(items, dtype=np.float32)
    dots = q @ x.T
    if metric == "dot":
        return dots
    if metric == "cosine":
        return dots / np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(x, axis=1))
    sq = (q * q).sum(axis=1)[:, None] + (x * x).sum(axis=1)[None, :] - 2.0 * dots
    return np.minimum(-sq, 0.0).astype(np.float32)
