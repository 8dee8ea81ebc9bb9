# exercise: 06_evaluate
# why: builds the result from a set of metric names, so the keys come out in arbitrary order
#   instead of precision, recall, f1, mrr, ndcg.
def evaluate_run(qrels: dict, run: dict, k: int = 10) -> dict[str, float]:
    per_metric: dict[str, list[float]] = {}
    for qid, grades in qrels.items():
        ranked = ranked_docs(run.get(qid, {}))
        p, r, f = precision_recall_f1(ranked, grades, k)
        for name, value in (
            (f"ndcg@{k}", ndcg_at_k(ranked, grades, k)),
            (f"mrr@{k}", reciprocal_rank(ranked, grades, k)),
            (f"precision@{k}", p),
            (f"recall@{k}", r),
            (f"f1@{k}", f),
        ):
            per_metric.setdefault(name, []).append(value)
    return {name: float(sum(v) / len(v)) for name, v in per_metric.items()}
