# exercise: 09_choose
# why: takes the first row of least memory (idxmin), ignoring the p99 and recall tie-breaks.
def choose_index(table: pd.DataFrame, min_recall: float, max_p99_ms: float, max_memory_mb: float):
    ok = table[
        (table["recall"] >= min_recall)
        & (table["p99_ms"] <= max_p99_ms)
        & (table["memory_mb"] <= max_memory_mb)
    ]
    if ok.empty:
        return None
    return ok.loc[ok["memory_mb"].idxmin()].to_dict()
