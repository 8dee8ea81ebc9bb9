# exercise: 06_prf
# why: treats only grades above 1 as relevant (g > 1): "complement" (grade 1) documents are
#   missed, both as hits and in the number of relevant documents.
def precision_recall_f1(ranked: list, grades: dict, k: int) -> tuple[float, float, float]:
    relevant = {d for d, g in grades.items() if g > 1}
    hits = len(relevant.intersection(ranked[:k]))
    precision = hits / k
    recall = hits / len(relevant) if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)
