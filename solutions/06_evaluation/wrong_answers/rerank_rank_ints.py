# exercise: 06_rerank
# why: the solution's order, but the new scores are int ranks (n - position), not floats.
def rerank_for_shoppers(run, products):
    median = products.groupby(C.COL_CATEGORY)[C.COL_PRICE].transform("median")
    rel_price = products[C.COL_PRICE] / median
    value = 0.5 / (1 + rel_price**2) + 0.5 * (products[C.COL_RATING] - 1) / 4
    fused = with_prior(run, dict(zip(products[C.COL_PRODUCT_ID], value)), 0.2)
    out = {}
    for q, docs in fused.items():
        order = sorted(docs, key=lambda d: (-docs[d], d))
        out[q] = {d: len(order) - i for i, d in enumerate(order)}
    return out
