# exercise: 05_evaluate
# why: skips the queries without any relevant judgement (R = 0) when averaging, which inflates
#   every metric; the text says the mean is over all queries of qrels.
def evaluate_run(qrels: dict, run: dict, k: int = 10) -> dict[str, float]:
    names = [f"precision@{k}", f"recall@{k}", f"f1@{k}", f"mrr@{k}", f"ndcg@{k}"]
    totals, n = dict.fromkeys(names, 0.0), 0
    for qid, grades in qrels.items():
        if not any(g >= 1 for g in grades.values()):
            continue
        n += 1
        ranked = rank_docs(run.get(qid, {}))
        p, r, f = precision_recall_f1(ranked, grades, k)
        values = (p, r, f, reciprocal_rank(ranked, grades, k), ndcg_at_k(ranked, grades, k))
        for name, value in zip(names, values):
            totals[name] += value
    return {name: float(total / n) if n else 0.0 for name, total in totals.items()}
