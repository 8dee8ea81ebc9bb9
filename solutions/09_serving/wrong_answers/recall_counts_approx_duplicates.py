# exercise: 09_recall
# why: counts the approximate items found in the exact top k, so a duplicated result counts
#   once per copy instead of once.
def recall_at_k(approx, exact, k: int) -> float:
    approx, exact = [list(a) for a in approx], [list(e) for e in exact]
    if len(approx) != len(exact) or not exact:
        raise ValueError("approx and exact need the same, non-zero number of queries")
    if k < 1 or any(len(a) < k for a in approx) or any(len(e) < k for e in exact):
        raise ValueError(f"k out of range: {k}")
    shares = []
    for a, e in zip(approx, exact):
        top = set(e[:k]) - {-1}
        shares.append(sum(x in top for x in a[:k]) / k)
    return float(np.mean(shares))
