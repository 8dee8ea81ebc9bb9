# exercise: 06_ndcg
# why: computed with numpy and returned as a numpy float64 (the text asks for a Python float).
import numpy as np


def ndcg_at_k(ranked: list, grades: dict, k: int) -> float:
    gains = np.array([max(grades.get(d, 0), 0) for d in ranked[:k]], dtype=float)
    gains[gains < 1] = 0
    ideal = np.sort(np.array([g for g in grades.values() if g >= 1], dtype=float))[::-1][:k]
    dcg = (gains / np.log2(np.arange(2, gains.size + 2))).sum()
    idcg = (ideal / np.log2(np.arange(2, ideal.size + 2))).sum()
    return dcg / idcg if idcg > 0 else np.float64(0.0)
