# exercise: 06_evaluate
# why: collects one row of five values per query, then averages the columns with numpy.
import numpy as np


def evaluate_run(qrels: dict, run: dict, k: int = 10) -> dict[str, float]:
    names = [f"precision@{k}", f"recall@{k}", f"f1@{k}", f"mrr@{k}", f"ndcg@{k}"]
    rows = []
    for qid in qrels:
        ranked = ranked_docs(run.get(qid) or {})
        rows.append(
            [
                *precision_recall_f1(ranked, qrels[qid], k),
                reciprocal_rank(ranked, qrels[qid], k),
                ndcg_at_k(ranked, qrels[qid], k),
            ]
        )
    means = np.mean(rows, axis=0) if rows else np.zeros(len(names))
    return {name: float(value) for name, value in zip(names, means)}
