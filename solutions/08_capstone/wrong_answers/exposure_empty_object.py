# exercise: 08_exposure_share
# why: an empty run gives pd.Series([]) of dtype object (the pandas default for no data), not an
#   empty float Series.
def exposure_share(run, catalog, by="brand", k=10):
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if by not in catalog.columns:
        raise KeyError(f"catalog has no column {by!r}")
    value_of = dict(zip(catalog[C.COL_PRODUCT_ID], catalog[by]))
    counts = {}
    for docs in run.values():
        for d, _ in sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]:
            if d not in value_of:
                raise KeyError(f"product {d!r} is not in the catalog")
            counts[value_of[d]] = counts.get(value_of[d], 0) + 1
    total = sum(counts.values())
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.Series(
        [c / total for _, c in items],
        index=pd.Index([v for v, _ in items], name=by),
        name="exposure_share",
        dtype=object if not items else float,
    )
