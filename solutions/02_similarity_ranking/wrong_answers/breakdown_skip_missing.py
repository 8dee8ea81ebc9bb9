# exercise: 02_breakdown
# why: averages only the queries a system has a value for (missing queries are skipped instead
#   of counting 0).
def kind_breakdown(per_query: dict, queries: pd.DataFrame) -> pd.DataFrame:
    kind_of = dict(zip(queries[C.COL_QUERY_ID], queries[C.COL_QUERY_KIND]))
    rows = [
        {"system": name, "kind": kind_of[q], "value": float(v)}
        for name, scores in per_query.items()
        for q, v in scores.items()
        if q in kind_of
    ]
    long = pd.DataFrame(rows)
    table = long.pivot_table(index="kind", columns="system", values="value", aggfunc="mean")
    order = [k for k in C.QUERY_KINDS if k in table.index]
    table = table.reindex(index=order, columns=list(per_query))
    table.loc["all"] = long.groupby("system")["value"].mean().reindex(list(per_query)).to_numpy()
    table.index.name = "kind"
    table.columns.name = None
    return table.astype(float)
