# exercise: 06_rr
# why: returns the int 0 when there is no relevant doc (the text asks for a Python float).
def reciprocal_rank(ranked: list, grades: dict, k: int) -> float:
    ranks = [i for i, d in enumerate(ranked[:k], start=1) if grades.get(d, 0) >= 1]
    return 1 / ranks[0] if ranks else 0
