# exercise: 01_batches
# why: np.argsort(-lengths) uses quicksort, which is not stable: equal lengths lose their
#   original order on real-sized inputs.
import numpy as np


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64)).tolist()
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
