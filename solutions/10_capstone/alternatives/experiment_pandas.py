# exercise: 10_run_experiment
# why: one long frame of per-query values and pandas means per segment, with the segment order
#   built from the constants.
def run_experiment(runs, qrels, queries, k=10):
    if len(runs) == 0 or queries.empty:
        raise ValueError("need at least one system in runs and one query in queries")
    ids = list(queries[C.COL_QUERY_ID])
    missing = [q for q in ids if not qrels.get(q)]
    if missing:
        raise ValueError(f"no judgements for query {missing[0]}")
    metrics = [f"ndcg@{k}", f"hit_rate@{k}"]
    present_kinds = set(queries[C.COL_QUERY_KIND])
    present_langs = set(queries[C.COL_LANGUAGE])
    order = [("all", None, None)]
    order += [(s, C.COL_QUERY_KIND, s) for s in C.QUERY_KINDS if s in present_kinds]
    order += [(s, C.COL_LANGUAGE, s) for s in C.LANGUAGES if s in present_langs]
    pieces = []
    for system, run in runs.items():
        per = evaluate({q: qrels[q] for q in ids}, run, metrics, per_query=True)
        frame = queries.reset_index(drop=True).assign(
            **{m: [per[m][q] for q in ids] for m in metrics}
        )
        for segment, column, value in order:
            part = frame if column is None else frame[frame[column] == value]
            means = part[metrics].mean()
            pieces.append((system, segment, len(part), *(float(means[m]) for m in metrics)))
    table = pd.DataFrame(pieces, columns=["system", "segment", "n_queries", *metrics])
    return table.set_index(["system", "segment"])
