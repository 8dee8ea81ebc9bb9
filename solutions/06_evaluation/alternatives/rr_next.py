# exercise: 06_rr
# why: a generator with next() and a default instead of an explicit loop.
def reciprocal_rank(ranked: list, grades: dict, k: int) -> float:
    first = next((i for i, d in enumerate(ranked[:k], 1) if grades.get(d, 0) >= 1), None)
    return 0.0 if first is None else 1.0 / first
