# exercise: 06_ndcg
# why: the ideal ranking re-sorts the retrieved docs only, so relevant docs the run missed do
#   not lower the score (a common "ideal = sorted(my results)" mistake).
import math


def ndcg_at_k(ranked: list, grades: dict, k: int) -> float:
    gains = [grades.get(d, 0) if grades.get(d, 0) >= 1 else 0 for d in ranked[:k]]
    dcg = sum(g / math.log2(i + 1) for i, g in enumerate(gains, 1))
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(sorted(gains, reverse=True), 1))
    return float(dcg / idcg) if idcg > 0 else 0.0
