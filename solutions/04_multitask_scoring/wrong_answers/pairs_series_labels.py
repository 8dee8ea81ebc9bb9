# exercise: 04_preference_pairs
# why: groups a pandas Series by query and returns its index labels, not positions: inputs with
#   another index (e.g. a filtered frame's column) give the wrong rows.
import numpy as np


def preference_pairs(grades, query_ids) -> tuple[np.ndarray, np.ndarray]:
    g = grades if isinstance(grades, pd.Series) else pd.Series(grades)
    q = query_ids if isinstance(query_ids, pd.Series) else pd.Series(query_ids)
    if len(g) != len(q):
        raise ValueError(f"grades and query_ids differ in length: {len(g)} vs {len(q)}")
    better, worse = [], []
    for _, labels in g.groupby(q.to_numpy()).groups.items():
        values = g.loc[labels].to_numpy()
        bi, wi = np.nonzero(values[:, None] > values[None, :])
        better += list(np.asarray(labels)[bi])
        worse += list(np.asarray(labels)[wi])
    better, worse = np.array(better, dtype=np.int64), np.array(worse, dtype=np.int64)
    order = np.lexsort((worse, better))
    return better[order], worse[order]
