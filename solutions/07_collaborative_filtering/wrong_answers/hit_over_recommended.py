# exercise: 07_hit_rate
# why: averages over the users of recommended instead of the users of relevant: users without
#   a list are ignored instead of counting as misses, users only in recommended count.
def hit_rate_at_k(recommended, relevant, k):
    if k < 1:
        raise ValueError("k must be >= 1")
    if len(relevant) == 0:
        raise ValueError("relevant is empty")
    hits = [
        any(i in set(relevant.get(u, ())) for i in items[:k]) for u, items in recommended.items()
    ]
    return float(sum(hits) / len(hits)) if hits else 0.0
