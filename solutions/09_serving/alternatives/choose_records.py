# exercise: 09_choose
# why: plain Python over the rows as dicts, min with a key tuple.
def choose_index(table: pd.DataFrame, min_recall: float, max_p99_ms: float, max_memory_mb: float):
    rows = [
        r
        for r in table.to_dict("records")
        if r["recall"] >= min_recall
        and r["p99_ms"] <= max_p99_ms
        and r["memory_mb"] <= max_memory_mb
    ]
    if not rows:
        return None
    return min(rows, key=lambda r: (r["memory_mb"], r["p99_ms"], -r["recall"]))
