# exercise: 02_breakdown
# why: the "all" row is the mean of the kind means (every kind weighs the same) instead of the
#   mean over all queries.
def kind_breakdown(per_query: dict, queries: pd.DataFrame) -> pd.DataFrame:
    qids = queries[C.COL_QUERY_ID].tolist()
    kinds = queries[C.COL_QUERY_KIND].tolist()
    values = pd.DataFrame(
        {name: [float(scores.get(q, 0.0)) for q in qids] for name, scores in per_query.items()}
    )
    values["kind"] = kinds
    order = [k for k in C.QUERY_KINDS if k in set(kinds)]
    table = values.groupby("kind")[list(per_query)].mean().reindex(order)
    table.loc["all"] = table.mean()
    table.index.name = "kind"
    return table.astype(float)
