# exercise: 04_breakdown
# why: no check for empty inputs: an empty per_query or kinds gives an (almost) empty frame
#   instead of ValueError.
def kind_breakdown(per_query, kinds):
    table = pd.DataFrame(
        {n: [float(s.get(q, 0.0)) for q in kinds.index] for n, s in per_query.items()},
        index=kinds.index,
    )
    table.insert(0, "n_queries", 1)
    agg = {"n_queries": "sum", **{n: "mean" for n in per_query}}
    by_kind = table.groupby(kinds.to_numpy()).agg(agg).sort_index()
    overall = pd.DataFrame(
        {"n_queries": len(table), **{n: table[n].mean() for n in per_query}}, index=["all"]
    )
    out = pd.concat([by_kind, overall])
    out["n_queries"] = out["n_queries"].astype(int)
    return out
