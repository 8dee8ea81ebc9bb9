# exercise: 06_rerank
# why: returns BM25's scores unchanged: no offline loss, but no conversion gain either.
def rerank_for_shoppers(run, products):
    return {q: {d: float(s) for d, s in docs.items()} for q, docs in run.items()}
