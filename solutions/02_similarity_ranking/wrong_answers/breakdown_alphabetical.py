# exercise: 02_breakdown
# why: keeps groupby's alphabetical order of the kinds instead of the order of C.QUERY_KINDS.
def kind_breakdown(per_query: dict, queries: pd.DataFrame) -> pd.DataFrame:
    qids = queries[C.COL_QUERY_ID].tolist()
    values = pd.DataFrame(
        {name: [float(scores.get(q, 0.0)) for q in qids] for name, scores in per_query.items()}
    )
    values["kind"] = queries[C.COL_QUERY_KIND].tolist()
    table = values.groupby("kind")[list(per_query)].mean()
    table.loc["all"] = values[list(per_query)].mean()
    table.index.name = "kind"
    return table.astype(float)
