# exercise: 06_prf
# why: recall divides by every judged document, grade-0 judgements included.
def precision_recall_f1(ranked: list, grades: dict, k: int) -> tuple[float, float, float]:
    hits = sum(1 for d in ranked[:k] if grades.get(d, 0) >= 1)
    precision = hits / k
    recall = hits / len(grades) if grades else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)
