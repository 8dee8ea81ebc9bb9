# exercise: 02_rrf
# why: an empty list of runs returns {} instead of raising ValueError.
def rrf_fuse(runs: list[dict], k: int = 60) -> dict:
    fused = {}
    for run in runs:
        for qid, docs in run.items():
            out = fused.setdefault(qid, {})
            ranked = sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (doc, _) in enumerate(ranked, start=1):
                out[doc] = out.get(doc, 0.0) + 1.0 / (k + rank)
    return fused
