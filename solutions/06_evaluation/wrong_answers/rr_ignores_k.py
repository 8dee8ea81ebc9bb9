# exercise: 06_rr
# why: looks for the first relevant doc in the whole ranking, ignoring the cut-off k.
def reciprocal_rank(ranked: list, grades: dict, k: int) -> float:
    for rank, d in enumerate(ranked, start=1):
        if grades.get(d, 0) >= 1:
            return 1.0 / rank
    return 0.0
