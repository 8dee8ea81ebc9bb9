# exercise: 07_hit_rate
# why: checks the whole recommended list instead of its first k items.
def hit_rate_at_k(recommended, relevant, k):
    if k < 1:
        raise ValueError("k must be >= 1")
    if len(relevant) == 0:
        raise ValueError("relevant is empty")
    hits = sum(bool(set(recommended.get(u, [])) & set(items)) for u, items in relevant.items())
    return float(hits / len(relevant))
