# exercise: 02_breakdown
# why: plain dictionaries of sums and counts per kind, turned into a DataFrame at the end.
def kind_breakdown(per_query: dict, queries: pd.DataFrame) -> pd.DataFrame:
    pairs = list(zip(queries[C.COL_QUERY_ID], queries[C.COL_QUERY_KIND]))
    rows = [k for k in C.QUERY_KINDS if any(kind == k for _, kind in pairs)] + ["all"]
    data = {}
    for name, scores in per_query.items():
        column = []
        for row in rows:
            chosen = [q for q, kind in pairs if row == "all" or kind == row]
            column.append(sum(float(scores.get(q, 0.0)) for q in chosen) / len(chosen))
        data[name] = column
    return pd.DataFrame(data, index=pd.Index(rows, name="kind"), dtype=float)
