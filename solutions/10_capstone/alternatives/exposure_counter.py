# exercise: 10_exposure_share
# why: collections.Counter over the top-k slots and one sort of (-count, value) pairs.
from collections import Counter


def exposure_share(run, catalog, by="brand", k=10):
    if k < 1:
        raise ValueError(f"k={k}: need k >= 1")
    if by not in catalog:
        raise KeyError(f"no column {by!r} in the catalog")
    lookup = catalog.set_index(C.COL_PRODUCT_ID)[by].to_dict()
    slots = Counter()
    for docs in run.values():
        for product in sorted(docs, key=lambda d: (-docs[d], d))[:k]:
            if product not in lookup:
                raise KeyError(f"product id {product!r} is not in the catalog")
            slots[lookup[product]] += 1
    ranked = sorted(slots.items(), key=lambda item: (-item[1], item[0]))
    total = sum(slots.values())
    index = pd.Index([value for value, _ in ranked], name=by, dtype=object)
    return pd.Series(
        [n / total for _, n in ranked], index=index, dtype=float, name="exposure_share"
    )
