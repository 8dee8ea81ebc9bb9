# exercise: 07_hit_rate
# why: skips the users of relevant that have no recommendation (or nothing relevant) instead of
#   counting them as misses.
def hit_rate_at_k(recommended, relevant, k):
    if k < 1:
        raise ValueError("k must be >= 1")
    if len(relevant) == 0:
        raise ValueError("relevant is empty")
    scored = [u for u, items in relevant.items() if u in recommended and len(items) > 0]
    if not scored:
        return 0.0
    hits = sum(any(i in set(relevant[u]) for i in list(recommended[u])[:k]) for u in scored)
    return float(hits / len(scored))
