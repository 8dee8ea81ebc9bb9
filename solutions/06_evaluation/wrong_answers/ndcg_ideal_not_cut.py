# exercise: 06_ndcg
# why: the ideal DCG sums over all relevant docs instead of the best k, so nDCG@k can never
#   reach 1 when a query has more than k relevant docs.
import math


def ndcg_at_k(ranked: list, grades: dict, k: int) -> float:
    dcg = sum(
        grades.get(d, 0) / math.log2(i + 1)
        for i, d in enumerate(ranked[:k], 1)
        if grades.get(d, 0) >= 1
    )
    ideal = sorted((g for g in grades.values() if g >= 1), reverse=True)
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, 1))
    return float(dcg / idcg) if idcg > 0 else 0.0
