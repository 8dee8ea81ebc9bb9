# exercise: 08_run_experiment
# why: never checks that every query has judgements: a query missing from qrels silently
#   scores 0 instead of raising ValueError.
def run_experiment(runs, qrels, queries, k=10):
    if not runs:
        raise ValueError("runs is empty")
    if len(queries) == 0:
        raise ValueError("queries is empty")
    ids = queries[C.COL_QUERY_ID].tolist()
    names = [f"ndcg@{k}", f"hit_rate@{k}"]
    kinds = queries[C.COL_QUERY_KIND].to_numpy()
    langs = queries[C.COL_LANGUAGE].to_numpy()
    segments = [("all", np.ones(len(ids), dtype=bool))]
    segments += [(kind, kinds == kind) for kind in C.QUERY_KINDS if (kinds == kind).any()]
    segments += [(lang, langs == lang) for lang in C.LANGUAGES if (langs == lang).any()]
    rows = []
    for system, run in runs.items():
        judged = {q: qrels[q] for q in ids if qrels.get(q)}
        per = evaluate(judged, run, names, per_query=True)
        values = {m: np.array([per[m].get(q, 0.0) for q in ids]) for m in names}
        for segment, mask in segments:
            row = {"system": system, "segment": segment, "n_queries": int(mask.sum())}
            row.update({m: float(values[m][mask].mean()) for m in names})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["system", "segment"])
