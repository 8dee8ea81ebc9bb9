# exercise: 02_similarity
# why: anything that is not "cosine" or "l2" falls through to the dot product, so a misspelt
#   metric silently ranks by dot product instead of raising ValueError.
import numpy as np


def similarity_matrix(queries: np.ndarray, items: np.ndarray, metric: str = "cosine") -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    x = np.asarray(items, dtype=np.float32)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return q @ x.T
    if metric == "l2":
        sq = (q * q).sum(axis=1)[:, None] + (x * x).sum(axis=1)[None, :] - 2.0 * (q @ x.T)
        return np.minimum(-sq, 0.0).astype(np.float32)
    return q @ x.T
