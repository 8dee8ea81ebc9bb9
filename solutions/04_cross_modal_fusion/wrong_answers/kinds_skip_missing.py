# exercise: 04_breakdown
# why: averages only the queries a run has a score for (a missing query is skipped, not 0).
def kind_breakdown(per_query, kinds):
    if not per_query or len(kinds) == 0:
        raise ValueError("per_query and kinds must not be empty")
    table = pd.DataFrame(
        {n: [s.get(q, float("nan")) for q in kinds.index] for n, s in per_query.items()},
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
