# exercise: 06_rerank
# why: the solution's re-ranking, but queries with an empty result list are dropped from the
#   returned run instead of staying empty.
def rerank_for_shoppers(run, products):
    median = products.groupby(C.COL_CATEGORY)[C.COL_PRICE].transform("median")
    rel_price = products[C.COL_PRICE] / median
    value = 0.5 / (1 + rel_price**2) + 0.5 * (products[C.COL_RATING] - 1) / 4
    prior = dict(zip(products[C.COL_PRODUCT_ID], value))
    return with_prior({q: docs for q, docs in run.items() if docs}, prior, 0.2)
