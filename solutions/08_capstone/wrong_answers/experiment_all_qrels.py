# exercise: 08_run_experiment
# why: the "all" segment evaluates every query of qrels (evaluate's default) instead of the
#   rows of queries.
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
    kinds = queries[C.COL_QUERY_KIND].to_numpy()
    langs = queries[C.COL_LANGUAGE].to_numpy()
    segments = [(kind, kinds == kind) for kind in C.QUERY_KINDS if (kinds == kind).any()]
    segments += [(lang, langs == lang) for lang in C.LANGUAGES if (langs == lang).any()]
    rows = []
    for system, run in runs.items():
        overall = evaluate({q: g for q, g in qrels.items() if g}, run, names)
        rows.append({"system": system, "segment": "all", "n_queries": len(ids), **overall})
        per = evaluate({q: qrels[q] for q in ids}, run, names, per_query=True)
        for segment, mask in segments:
            row = {"system": system, "segment": segment, "n_queries": int(mask.sum())}
            row.update({m: float(np.mean(np.array([per[m][q] for q in ids])[mask])) for m in names})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["system", "segment"])
