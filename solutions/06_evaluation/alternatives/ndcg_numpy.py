# exercise: 06_ndcg
# why: numpy arrays and a natural-log discount (the base of the logarithm cancels in DCG/IDCG),
#   converted to a Python float.
import numpy as np


def ndcg_at_k(ranked: list, grades: dict, k: int) -> float:
    gains = np.array([g if (g := grades.get(d, 0)) >= 1 else 0 for d in ranked[:k]], float)
    ideal = -np.sort(-np.array([g for g in grades.values() if g >= 1], float))[:k]
    idcg = float((ideal / np.log(np.arange(2, ideal.size + 2))).sum())
    if idcg <= 0:
        return 0.0
    return float((gains / np.log(np.arange(2, gains.size + 2))).sum() / idcg)
