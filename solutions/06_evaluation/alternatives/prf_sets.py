# exercise: 06_prf
# why: set intersection instead of counting loops; F1 as 2 * hits / (k + R), which equals the
#   harmonic mean of precision@k and recall@k.
def precision_recall_f1(ranked: list, grades: dict, k: int) -> tuple[float, float, float]:
    relevant = {d for d, g in grades.items() if g >= 1}
    hits = len(relevant & set(ranked[:k]))
    if not relevant:
        return hits / k, 0.0, 0.0
    f1 = 2 * hits / (k + len(relevant))
    return hits / k, hits / len(relevant), float(f1)
