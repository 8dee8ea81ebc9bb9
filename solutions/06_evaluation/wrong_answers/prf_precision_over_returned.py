# exercise: 06_prf
# why: divides precision by the number of docs actually returned (len(ranked[:k])) instead of
#   k, so a short run looks more precise than it is.
def precision_recall_f1(ranked: list, grades: dict, k: int) -> tuple[float, float, float]:
    top = ranked[:k]
    n_rel = sum(1 for g in grades.values() if g >= 1)
    hits = sum(1 for d in top if grades.get(d, 0) >= 1)
    precision = hits / len(top) if top else 0.0
    recall = hits / n_rel if n_rel else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)
