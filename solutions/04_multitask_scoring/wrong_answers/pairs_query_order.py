# exercise: 04_preference_pairs
# why: concatenates the pairs query by query and never sorts them by (better, worse), so with
#   interleaved queries the order is wrong.
import numpy as np


def preference_pairs(grades, query_ids) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(grades, dtype=np.float64)
    q = np.asarray(query_ids, dtype=object)
    if len(y) != len(q):
        raise ValueError(f"grades and query_ids differ in length: {len(y)} vs {len(q)}")
    better, worse = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for query in sorted(set(q.tolist())):
        rows = np.flatnonzero(q == query)
        bi, wi = np.nonzero(y[rows][:, None] > y[rows][None, :])
        better.append(rows[bi])
        worse.append(rows[wi])
    return np.concatenate(better).astype(np.int64), np.concatenate(worse).astype(np.int64)
