# exercise: 03_preference_pairs
# why: compares with >= and only drops the pair of a row with itself: tied grades become pairs
#   in both directions.
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
        ge = (y[rows][:, None] >= y[rows][None, :]) & ~np.eye(len(rows), dtype=bool)
        bi, wi = np.nonzero(ge)
        better.append(rows[bi])
        worse.append(rows[wi])
    better, worse = np.concatenate(better), np.concatenate(worse)
    order = np.lexsort((worse, better))
    return better[order].astype(np.int64), worse[order].astype(np.int64)
