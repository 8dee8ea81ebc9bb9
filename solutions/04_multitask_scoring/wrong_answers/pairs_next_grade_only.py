# exercise: 04_preference_pairs
# why: pairs each row only with the rows of the next lower grade of its query (3 > 2, 2 > 1),
#   missing the pairs that skip a grade (3 > 1), although the text asks for every pair.
import numpy as np


def preference_pairs(grades, query_ids) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(grades, dtype=np.float64)
    q = np.asarray(query_ids, dtype=object)
    if len(y) != len(q):
        raise ValueError(f"grades and query_ids differ in length: {len(y)} vs {len(q)}")
    codes = pd.factorize(pd.Series(q))[0] if len(q) else np.zeros(0, dtype=np.int64)
    better, worse = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        levels = np.unique(y[rows])
        for high, low in zip(levels[1:], levels[:-1]):
            top, bottom = rows[y[rows] == high], rows[y[rows] == low]
            better.append(np.repeat(top, len(bottom)))
            worse.append(np.tile(bottom, len(top)))
    better, worse = np.concatenate(better), np.concatenate(worse)
    order = np.lexsort((worse, better))
    return better[order].astype(np.int64), worse[order].astype(np.int64)
