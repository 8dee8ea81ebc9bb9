# exercise: 09_recall
# why: explicit loops over queries and items, a running total instead of numpy.
def recall_at_k(approx, exact, k: int) -> float:
    approx = [list(row) for row in approx]
    exact = [list(row) for row in exact]
    if not exact or len(approx) != len(exact):
        raise ValueError("need the same, non-zero number of queries")
    if k < 1:
        raise ValueError("k must be at least 1")
    total = 0.0
    for a, e in zip(approx, exact):
        if len(a) < k or len(e) < k:
            raise ValueError("k exceeds the length of a list")
        found = set()
        top = a[:k]
        for item in e[:k]:
            if item != -1 and item in top:
                found.add(item)
        total += len(found) / k
    return float(total / len(exact))
