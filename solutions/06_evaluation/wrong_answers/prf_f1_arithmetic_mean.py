# exercise: 06_prf
# why: F1 as the arithmetic mean of precision and recall instead of their harmonic mean.
def precision_recall_f1(ranked: list, grades: dict, k: int) -> tuple[float, float, float]:
    n_rel = sum(1 for g in grades.values() if g >= 1)
    hits = sum(1 for d in ranked[:k] if grades.get(d, 0) >= 1)
    precision = hits / k
    recall = hits / n_rel if n_rel else 0.0
    return float(precision), float(recall), float((precision + recall) / 2)
