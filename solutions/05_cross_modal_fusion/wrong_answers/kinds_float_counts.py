# exercise: 05_breakdown
# why: computes the counts with mean-like arithmetic (a float column): n_queries is not an int.
def kind_breakdown(per_query, kinds):
    if not per_query or len(kinds) == 0:
        raise ValueError("per_query and kinds must not be empty")
    rows = {}
    for kind in sorted(set(kinds)) + ["all"]:
        ids = kinds.index if kind == "all" else kinds.index[kinds.to_numpy() == kind]
        rows[kind] = {"n_queries": float(len(ids))}
        for name, scores in per_query.items():
            rows[kind][name] = sum(float(scores.get(q, 0.0)) for q in ids) / len(ids)
    return pd.DataFrame.from_dict(rows, orient="index")
