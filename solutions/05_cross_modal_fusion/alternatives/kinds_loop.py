# exercise: 05_breakdown
# why: one loop over the sorted kinds with boolean masks, the frame built from a dict of rows.
import numpy as np


def kind_breakdown(per_query, kinds):
    if len(per_query) == 0 or kinds.empty:
        raise ValueError("need at least one run and one query")
    ids = list(kinds.index)
    labels = kinds.to_numpy()
    scores = {n: np.array([float(s.get(q, 0.0)) for q in ids]) for n, s in per_query.items()}
    rows, index = [], []
    for kind in [*sorted(set(labels)), None]:
        mask = np.ones(len(ids), bool) if kind is None else labels == kind
        rows.append(
            {"n_queries": int(mask.sum()), **{n: v[mask].mean() for n, v in scores.items()}}
        )
        index.append("all" if kind is None else kind)
    return pd.DataFrame(rows, index=index)
