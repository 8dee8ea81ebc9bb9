# exercise: 10_run_experiment
# why: builds the table with groupby means, so n_queries comes out as a float (the mean of a
#   column of ones times the size) instead of an int.
def run_experiment(runs, qrels, queries, k=10):
    if not runs:
        raise ValueError("runs is empty")
    if len(queries) == 0:
        raise ValueError("queries is empty")
    ids = queries[C.COL_QUERY_ID].tolist()
    for q in ids:
        if not qrels.get(q):
            raise ValueError(f"query {q} has no judgements")
    names = [f"ndcg@{k}", f"hit_rate@{k}"]
    rows = []
    for system, run in runs.items():
        per = evaluate({q: qrels[q] for q in ids}, run, names, per_query=True)
        frame = queries.assign(**{m: [per[m][q] for q in ids] for m in names})
        groups = [("all", frame)]
        groups += [(s, frame[frame[C.COL_QUERY_KIND] == s]) for s in C.QUERY_KINDS]
        groups += [(s, frame[frame[C.COL_LANGUAGE] == s]) for s in C.LANGUAGES]
        for segment, part in groups:
            if len(part):
                rows.append(
                    {
                        "system": system,
                        "segment": segment,
                        "n_queries": len(part) * 1.0,
                        **part[names].mean().to_dict(),
                    }
                )
    return pd.DataFrame(rows).set_index(["system", "segment"])
