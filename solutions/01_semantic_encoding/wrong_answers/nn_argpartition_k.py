# exercise: 01_nn
# why: np.argpartition(-sims, k) needs k < n: asking for more neighbours than the catalog has
#   raises instead of returning all of them.
import numpy as np


def nearest_neighbors(vectors: np.ndarray, i: int, k: int) -> list[int]:
    sims = vectors @ vectors[i]
    sims[i] = -np.inf
    top = np.argpartition(-sims, k)[:k]
    order = top[np.lexsort((top, -sims[top]))]
    return [int(j) for j in order]
