# exercise: 08_exposure_share
# why: counts every result of every query instead of the top k slots.
def exposure_share(run, catalog, by="brand", k=10):
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if by not in catalog.columns:
        raise KeyError(f"catalog has no column {by!r}")
    value_of = dict(zip(catalog[C.COL_PRODUCT_ID], catalog[by]))
    counts = {}
    for docs in run.values():
        for d in docs:
            if d not in value_of:
                raise KeyError(f"product {d!r} is not in the catalog")
            counts[value_of[d]] = counts.get(value_of[d], 0) + 1
    total = sum(counts.values())
    if total == 0:
        return pd.Series(dtype=float, name="exposure_share").rename_axis(by)
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.Series(
        [c / total for _, c in items],
        index=pd.Index([v for v, _ in items], name=by),
        name="exposure_share",
        dtype=float,
    )
