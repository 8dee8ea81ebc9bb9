# exercise: 02_rrf
# why: ranks start at 0 (enumerate without start=1): every contribution is 1 / (k + rank - 1).
def rrf_fuse(runs: list[dict], k: int = 60) -> dict:
    if not runs:
        raise ValueError("need at least one run")
    fused = {}
    for run in runs:
        for qid, docs in run.items():
            out = fused.setdefault(qid, {})
            for rank, (doc, _) in enumerate(sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))):
                out[doc] = out.get(doc, 0.0) + 1.0 / (k + rank)
    return fused
