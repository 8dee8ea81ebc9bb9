# exercise: 01_nn
# why: drops the first place assuming it is row i itself: with a duplicate of row i (equal
#   similarity, lower index) the duplicate is dropped and i is kept.
import numpy as np


def nearest_neighbors(vectors: np.ndarray, i: int, k: int) -> list[int]:
    sims = vectors @ vectors[i]
    order = np.lexsort((np.arange(len(sims)), -sims))
    return [int(j) for j in order[1 : k + 1]]
