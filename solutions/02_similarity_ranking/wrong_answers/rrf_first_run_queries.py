# exercise: 02_rrf
# why: fuses only the queries of the first run: a query missing from it is dropped even when
#   the other runs have it.
def rrf_fuse(runs: list[dict], k: int = 60) -> dict:
    if not runs:
        raise ValueError("need at least one run")
    fused = {}
    for qid in runs[0]:
        out = fused.setdefault(qid, {})
        for run in runs:
            ranked = sorted(run.get(qid, {}).items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (doc, _) in enumerate(ranked, start=1):
                out[doc] = out.get(doc, 0.0) + 1.0 / (k + rank)
    return fused
