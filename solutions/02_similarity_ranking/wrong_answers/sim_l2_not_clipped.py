# exercise: 02_similarity
# why: the expanded |q|^2 + |x|^2 - 2 q.x formula without clipping: rounding makes the score of
#   a vector with itself slightly positive.
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
        qn = np.maximum(np.linalg.norm(q, axis=1), 1e-12)
        xn = np.maximum(np.linalg.norm(x, axis=1), 1e-12)
        return dots / np.outer(qn, xn)
    return (2.0 * dots - (q * q).sum(axis=1)[:, None] - (x * x).sum(axis=1)[None, :]).astype(
        np.float32
    )
