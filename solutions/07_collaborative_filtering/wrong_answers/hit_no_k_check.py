# exercise: 07_hit_rate
# why: no check of k: k = 0 quietly gives 0.0 instead of ValueError.
def hit_rate_at_k(recommended, relevant, k):
    if len(relevant) == 0:
        raise ValueError("relevant is empty")
    hits = 0
    for user, items in relevant.items():
        wanted = set(items)
        hits += any(item in wanted for item in list(recommended.get(user, []))[:k])
    return float(hits / len(relevant))
