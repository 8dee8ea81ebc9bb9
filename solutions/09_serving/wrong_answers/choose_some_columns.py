# exercise: 09_choose
# why: returns only the columns of the budget and the setting, not all the table's columns.
def choose_index(table: pd.DataFrame, min_recall: float, max_p99_ms: float, max_memory_mb: float):
    ok = table[
        (table["recall"] >= min_recall)
        & (table["p99_ms"] <= max_p99_ms)
        & (table["memory_mb"] <= max_memory_mb)
    ]
    if ok.empty:
        return None
    best = ok.sort_values(["memory_mb", "p99_ms", "recall"], ascending=[True, True, False]).iloc[0]
    return {c: best[c] for c in ("kind", "param", "value", "recall", "p99_ms", "memory_mb")}
