# exercise: 02_breakdown
# why: builds the columns from sorted(per_query), so the systems are in alphabetical order
#   instead of the order of per_query.
def kind_breakdown(per_query: dict, queries: pd.DataFrame) -> pd.DataFrame:
    qids = queries[C.COL_QUERY_ID].tolist()
    kinds = queries[C.COL_QUERY_KIND].tolist()
    names = sorted(per_query)
    values = pd.DataFrame({n: [float(per_query[n].get(q, 0.0)) for q in qids] for n in names})
    values["kind"] = kinds
    order = [k for k in C.QUERY_KINDS if k in set(kinds)]
    table = values.groupby("kind")[names].mean().reindex(order)
    table.loc["all"] = values[names].mean()
    table.index.name = "kind"
    return table.astype(float)
