# exercise: 01_nn
# why: np.argsort(-sims) (quicksort, not stable) orders equal similarities arbitrarily instead
#   of by lower index.
import numpy as np


def nearest_neighbors(vectors: np.ndarray, i: int, k: int) -> list[int]:
    sims = vectors @ vectors[i]
    order = np.argsort(-sims)
    return [int(j) for j in order if j != i][:k]
