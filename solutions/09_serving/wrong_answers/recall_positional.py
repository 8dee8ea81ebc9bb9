# exercise: 09_recall
# why: compares the lists position by position, so the same items in another order are misses.
def recall_at_k(approx, exact, k: int) -> float:
    approx, exact = [list(a) for a in approx], [list(e) for e in exact]
    if len(approx) != len(exact) or not exact:
        raise ValueError("approx and exact need the same, non-zero number of queries")
    if k < 1 or any(len(a) < k for a in approx) or any(len(e) < k for e in exact):
        raise ValueError(f"k out of range: {k}")
    shares = [
        sum(x == y and x != -1 for x, y in zip(a[:k], e[:k])) / k for a, e in zip(approx, exact)
    ]
    return float(np.mean(shares))
