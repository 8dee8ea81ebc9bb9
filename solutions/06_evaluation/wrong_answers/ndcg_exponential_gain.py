# exercise: 06_ndcg
# why: the 2**g - 1 gain of the trec/LightGBM convention, while the text asks for linear gain.
import math


def ndcg_at_k(ranked: list, grades: dict, k: int) -> float:
    def gain(g):
        return 2**g - 1 if g >= 1 else 0

    dcg = sum(gain(grades.get(d, 0)) / math.log2(i + 1) for i, d in enumerate(ranked[:k], 1))
    ideal = sorted((g for g in grades.values() if g >= 1), reverse=True)[:k]
    idcg = sum(gain(g) / math.log2(i + 1) for i, g in enumerate(ideal, 1))
    return float(dcg / idcg) if idcg > 0 else 0.0
