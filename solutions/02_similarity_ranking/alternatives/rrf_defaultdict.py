# exercise: 02_rrf
# why: collections.defaultdict and a rank dictionary per query.
from collections import defaultdict


def rrf_fuse(runs: list[dict], k: int = 60) -> dict:
    if len(runs) < 1:
        raise ValueError("rrf_fuse needs at least one run")
    fused: dict = defaultdict(lambda: defaultdict(float))
    for run in runs:
        for qid, docs in run.items():
            fused[qid]  # a query with no document still appears
            order = sorted(docs, key=lambda d: (-docs[d], d))
            for rank, doc in enumerate(order, 1):
                fused[qid][doc] += 1 / (k + rank)
    return {q: dict(d) for q, d in fused.items()}
