# exercise: 02_rrf
# why: sorted(docs, key=docs.get, reverse=True) breaks equal scores by the run's insertion
#   order, not by doc id.
def rrf_fuse(runs: list[dict], k: int = 60) -> dict:
    if not runs:
        raise ValueError("need at least one run")
    fused = {}
    for run in runs:
        for qid, docs in run.items():
            out = fused.setdefault(qid, {})
            for rank, doc in enumerate(sorted(docs, key=docs.get, reverse=True), start=1):
                out[doc] = out.get(doc, 0.0) + 1.0 / (k + rank)
    return fused
