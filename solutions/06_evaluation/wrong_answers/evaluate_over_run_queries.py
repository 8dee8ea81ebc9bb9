# exercise: 06_evaluate
# why: averages over the queries of the run instead of the queries of qrels: a query the run
#   misses is left out instead of scoring 0, and queries only in the run count.
def evaluate_run(qrels: dict, run: dict, k: int = 10) -> dict[str, float]:
    names = [f"precision@{k}", f"recall@{k}", f"f1@{k}", f"mrr@{k}", f"ndcg@{k}"]
    rows = []
    for qid, docs in run.items():
        grades = qrels.get(qid, {})
        ranked = ranked_docs(docs)
        p, r, f = precision_recall_f1(ranked, grades, k)
        rows.append((p, r, f, reciprocal_rank(ranked, grades, k), ndcg_at_k(ranked, grades, k)))
    n = len(rows)
    return {
        name: float(sum(row[i] for row in rows) / n) if n else 0.0 for i, name in enumerate(names)
    }
