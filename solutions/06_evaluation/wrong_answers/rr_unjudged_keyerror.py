# exercise: 06_rr
# why: looks grades up with grades[d], so an unjudged doc in the ranking raises KeyError instead
#   of counting as not relevant.
def reciprocal_rank(ranked: list, grades: dict, k: int) -> float:
    for rank, d in enumerate(ranked[:k], start=1):
        if grades[d] >= 1:
            return 1.0 / rank
    return 0.0
