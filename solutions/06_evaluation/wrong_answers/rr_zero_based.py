# exercise: 06_rr
# why: ranks counted from 0 (enumerate without start=1): the first relevant doc at rank r gets
#   1 / (r - 1), and one at the top raises ZeroDivisionError.
def reciprocal_rank(ranked: list, grades: dict, k: int) -> float:
    for rank, d in enumerate(ranked[:k]):
        if grades.get(d, 0) >= 1:
            return 1.0 / rank if rank else 1.0
    return 0.0
