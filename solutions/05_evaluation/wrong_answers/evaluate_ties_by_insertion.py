# exercise: 05_evaluate
# why: ranks each query's docs with sorted(docs, key=docs.get, reverse=True): equal scores keep
#   the run's insertion order instead of doc id order.
def evaluate_run(qrels: dict, run: dict, k: int = 10) -> dict[str, float]:
    names = [f"precision@{k}", f"recall@{k}", f"f1@{k}", f"mrr@{k}", f"ndcg@{k}"]
    totals = dict.fromkeys(names, 0.0)
    for qid, grades in qrels.items():
        docs = run.get(qid, {})
        ranked = sorted(docs, key=docs.get, reverse=True)
        p, r, f = precision_recall_f1(ranked, grades, k)
        values = (p, r, f, reciprocal_rank(ranked, grades, k), ndcg_at_k(ranked, grades, k))
        for name, value in zip(names, values):
            totals[name] += value
    return {name: float(total / len(qrels)) for name, total in totals.items()}
