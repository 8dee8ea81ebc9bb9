# exercise: 06_rerank
# why: the same value prior, blended by hand (min-max per query) instead of with_prior.
def rerank_for_shoppers(run, products):
    median = products.groupby(C.COL_CATEGORY)[C.COL_PRICE].transform("median")
    price_fit = 0.5 / (1 + (products[C.COL_PRICE] / median) ** 2)
    value = price_fit + 0.5 * (products[C.COL_RATING] - 1) / 4
    value_of = dict(zip(products[C.COL_PRODUCT_ID], value))

    def minmax(xs):
        lo, hi = min(xs), max(xs)
        return [0.0 if hi == lo else (x - lo) / (hi - lo) for x in xs]

    out = {}
    for q, docs in run.items():
        ids = list(docs)
        if not ids:
            out[q] = {}
            continue
        rel = minmax([float(docs[d]) for d in ids])
        val = minmax([float(value_of.get(d, 0.0)) for d in ids])
        out[q] = {d: 0.8 * r + 0.2 * v for d, r, v in zip(ids, rel, val)}
    return out
