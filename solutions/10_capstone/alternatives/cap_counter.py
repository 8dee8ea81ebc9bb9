# exercise: 10_cap_exposure
# why: one pass with collections.Counter, the skipped products kept in a deque; the fill is a
#   second loop over them.
import math
from collections import Counter, deque


def cap_exposure(run, brand_of, max_share=0.3, k=10):
    if not (max_share > 0 and max_share <= 1):
        raise ValueError(f"max_share={max_share}: must be in (0, 1]")
    if k < 1:
        raise ValueError(f"k={k}: must be at least 1")
    cap = max(1, math.floor(max_share * k))
    capped = {}
    for qid, docs in run.items():
        missing = [d for d in docs if d not in brand_of]
        if missing:
            raise KeyError(f"no brand for product {sorted(missing)[0]!r}")
        ranking = sorted(docs, key=lambda d: (-docs[d], d))
        held, page, later = Counter(), [], deque()
        for d in ranking:
            if len(page) < k and held[brand_of[d]] < cap:
                held[brand_of[d]] += 1
                page.append(d)
            else:
                later.append(d)
        while later and len(page) < min(k, len(ranking)):
            page.append(later.popleft())
        order = page + list(later)
        capped[qid] = {d: float(len(order) - i) for i, d in enumerate(order)}
    return capped
