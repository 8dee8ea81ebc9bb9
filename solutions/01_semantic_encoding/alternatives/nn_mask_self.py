# exercise: 01_nn
# why: masks row i with -inf on a copy and takes a stable argsort, then at most n - 1 results.
import numpy as np


def nearest_neighbors(vectors: np.ndarray, i: int, k: int) -> list[int]:
    sims = np.array(vectors @ vectors[i], dtype=np.float64)
    sims[i] = -np.inf
    order = np.argsort(-sims, kind="stable")
    return order[: min(k, len(sims) - 1)].tolist()
