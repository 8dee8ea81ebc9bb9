# exercise: 04_breakdown
# why: the "all" row averages every score of the run, including ids that are not in kinds.
def kind_breakdown(per_query, kinds):
    if not per_query or len(kinds) == 0:
        raise ValueError("per_query and kinds must not be empty")
    table = pd.DataFrame(
        {n: [float(s.get(q, 0.0)) for q in kinds.index] for n, s in per_query.items()},
        index=kinds.index,
    )
    table.insert(0, "n_queries", 1)
    agg = {"n_queries": "sum", **{n: "mean" for n in per_query}}
    by_kind = table.groupby(kinds.to_numpy()).agg(agg).sort_index()
    everything = {n: sum(s.values()) / len(set(s) | set(kinds.index)) for n, s in per_query.items()}
    overall = pd.DataFrame({"n_queries": len(table), **everything}, index=["all"])
    out = pd.concat([by_kind, overall])
    out["n_queries"] = out["n_queries"].astype(int)
    return out
