# exercise: 05_rerank
# why: the solution's re-ranking, but queries with an empty result list are dropped from the
#   returned run instead of staying empty.
def rerank_for_shoppers(run, products):
    rel_price = products[C.COL_PRICE] / products.groupby(C.COL_CATEGORY)[C.COL_PRICE].transform("median")
    value = 0.5 / (1 + rel_price**2) + 0.5 * (products[C.COL_RATING] - 1) / 4
    fused = with_prior({q: docs for q, docs in run.items() if docs}, dict(zip(products[C.COL_PRODUCT_ID], value)), 0.2)
    return fused
