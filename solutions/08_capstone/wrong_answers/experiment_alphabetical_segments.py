# exercise: 08_run_experiment
# why: takes the segments from sorted(set(...)) (alphabetical) instead of the order of
#   C.QUERY_KINDS and C.LANGUAGES.
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
    segments = [("all", np.ones(len(ids), dtype=bool))]
    segments += [(s, kinds == s) for s in sorted(set(kinds))]
    segments += [(s, langs == s) for s in sorted(set(langs))]
    rows = []
    for system, run in runs.items():
        per = evaluate({q: qrels[q] for q in ids}, run, names, per_query=True)
        for segment, mask in segments:
            row = {"system": system, "segment": segment, "n_queries": int(mask.sum())}
            for m in names:
                row[m] = float(np.mean([per[m][q] for q, keep in zip(ids, mask) if keep]))
            rows.append(row)
    return pd.DataFrame(rows).set_index(["system", "segment"])
