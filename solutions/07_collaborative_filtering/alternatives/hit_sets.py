# exercise: 07_hit_rate
# why: set intersection per user and statistics.mean.
from statistics import mean


def hit_rate_at_k(recommended, relevant, k):
    if k < 1 or not relevant:
        raise ValueError(f"need k >= 1 and at least one user, got k={k}, {len(relevant)} users")
    return float(
        mean(
            1.0 if set(list(recommended.get(u, []))[:k]) & set(rel) else 0.0
            for u, rel in relevant.items()
        )
    )
