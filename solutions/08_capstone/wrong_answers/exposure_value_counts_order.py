# exercise: 08_exposure_share
# why: value_counts(normalize=True) orders equal shares as it meets them, not by value ascending.
def exposure_share(run, catalog, by="brand", k=10):
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if by not in catalog.columns:
        raise KeyError(f"catalog has no column {by!r}")
    value_of = dict(zip(catalog[C.COL_PRODUCT_ID], catalog[by]))
    slots = []
    for docs in run.values():
        for d, _ in sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]:
            if d not in value_of:
                raise KeyError(f"product {d!r} is not in the catalog")
            slots.append(value_of[d])
    shares = pd.Series(slots, dtype=object).value_counts(normalize=True, sort=False)
    shares = shares.sort_values(ascending=False, kind="stable").astype(float)
    return shares.rename("exposure_share").rename_axis(by)
