# exercise: 04_preference_pairs
# why: a pandas self-merge on the query id, filtered on the grades and sorted.
import numpy as np


def preference_pairs(grades, query_ids) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(grades, dtype=float)
    q = np.asarray(query_ids, dtype=object)
    if g.shape[0] != q.shape[0]:
        raise ValueError(f"length mismatch: {g.shape[0]} grades, {q.shape[0]} query ids")
    rows = pd.DataFrame({"row": np.arange(len(g), dtype=np.int64), "q": q, "g": g})
    pairs = rows.merge(rows, on="q", suffixes=("_b", "_w"))
    pairs = pairs[pairs["g_b"] > pairs["g_w"]].sort_values(["row_b", "row_w"])
    return pairs["row_b"].to_numpy(np.int64), pairs["row_w"].to_numpy(np.int64)
