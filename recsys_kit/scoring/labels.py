"""Labels of pairs: graded relevance from the qrels and purchases from the interaction log.

Example:
    >>> pairs = pd.DataFrame({"query_id": ["q"], "product_id": ["a"]})
    >>> attach_grades(pairs, {"q": {"a": 3}})["grade"].tolist()
    [3]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recsys_kit import constants as C

__all__ = ["attach_grades", "purchase_qrels", "purchase_rate"]


def purchase_rate(
    interactions: pd.DataFrame,
    product_ids: Sequence[str],
    split: str | None = "train",
    prior_strength: float = 10.0,
) -> np.ndarray:
    """Smoothed product-level purchase rate, the purchase target of the multi-task model.

    Definition: among the users who interacted with the product (any event) in ``split``, the
    fraction who bought it, shrunk toward the global rate with ``prior_strength`` pseudo-users:
    ``(buyers + m * global) / (users + m)``. MiniShop's log has no query column, so this is a
    *query-independent* propensity ("does this product sell once seen"), not "bought after
    this query"; the model can only learn it from query-independent features (rating, price,
    popularity). Use the train split for targets and the test split to evaluate.

    Args:
        interactions: log with ``user_id``, ``product_id``, ``event``, ``split``.
        product_ids: products to return rates for (catalog order, or the pairs' products).
        split: ``"train"``, ``"test"`` or None (all rows).
        prior_strength: pseudo-users of the shrinkage (0 = raw rate).

    Returns:
        (len(product_ids),) float64 rates in [0, 1]; unseen products get the global rate.

    Example:
        >>> log = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "product_id": ["a", "a", "a"],
        ...                     "event": ["view", "view", "purchase"], "split": "train"})
        >>> purchase_rate(log, ["a", "b"], prior_strength=0).tolist()
        [0.5, 0.5]
    """
    cols = [C.COL_USER_ID, C.COL_PRODUCT_ID, C.COL_EVENT]
    missing = [c for c in cols + ([C.COL_SPLIT] if split else []) if c not in interactions]
    if missing:
        raise KeyError(f"interactions lack column(s) {missing}; load with load_interactions()")
    if prior_strength < 0:
        raise ValueError(f"prior_strength must be >= 0, got {prior_strength}")
    log = interactions if split is None else interactions[interactions[C.COL_SPLIT] == split]
    if log.empty:
        raise ValueError(f"no interactions in split {split!r}")
    users = log.groupby(C.COL_PRODUCT_ID)[C.COL_USER_ID].nunique()
    buys = log[log[C.COL_EVENT] == "purchase"].groupby(C.COL_PRODUCT_ID)[C.COL_USER_ID].nunique()
    buys = buys.reindex(users.index, fill_value=0)
    global_rate = float(buys.sum() / users.sum())
    rate = (buys + prior_strength * global_rate) / (users + prior_strength)
    ids = pd.Index(np.asarray(product_ids).astype(str))
    return rate.reindex(ids).fillna(global_rate).to_numpy(dtype=np.float64)


def purchase_qrels(
    interactions: pd.DataFrame, pairs: pd.DataFrame, split: str = "test"
) -> dict[str, dict[str, int]]:
    """Purchase "relevance": per query, the candidate products bought in ``split`` (gain 1).

    Queries none of whose candidates was bought are dropped (they would score 0 whatever the
    ranking). Evaluate with ``metrics.evaluate(purchase_qrels(...), run, ["ndcg@10"])``.

    Example:
        >>> log = pd.DataFrame({"user_id": ["u"], "product_id": ["a"], "event": ["purchase"],
        ...                     "split": ["test"]})
        >>> purchase_qrels(log, pd.DataFrame({"query_id": ["q", "q"], "product_id": ["a", "b"]}))
        {'q': {'a': 1}}
    """
    log = interactions[
        (interactions[C.COL_SPLIT] == split) & (interactions[C.COL_EVENT] == "purchase")
    ]
    bought = set(log[C.COL_PRODUCT_ID].astype(str))
    out: dict[str, dict[str, int]] = {}
    for qid, pid in zip(pairs[C.COL_QUERY_ID].astype(str), pairs[C.COL_PRODUCT_ID].astype(str)):
        if pid in bought:
            out.setdefault(qid, {})[pid] = 1
    return out


def attach_grades(
    pairs: pd.DataFrame, qrels: pd.DataFrame | Mapping[str, Mapping[str, int]]
) -> pd.DataFrame:
    """Add a ``grade`` column from the qrels; unjudged pairs get 0 (treated as irrelevant).

    Example:
        >>> attach_grades(pd.DataFrame({"query_id": ["q", "q"], "product_id": ["a", "b"]}),
        ...               {"q": {"a": 3}})["grade"].tolist()
        [3, 0]
    """
    if isinstance(qrels, pd.DataFrame):
        lookup = {
            (str(q), str(p)): int(g)
            for q, p, g in zip(qrels[C.COL_QUERY_ID], qrels[C.COL_PRODUCT_ID], qrels[C.COL_GRADE])
        }
    else:
        lookup = {(str(q), str(p)): int(g) for q, d in qrels.items() for p, g in d.items()}
    keys = zip(pairs[C.COL_QUERY_ID].astype(str), pairs[C.COL_PRODUCT_ID].astype(str))
    out = pairs.copy()
    out[C.COL_GRADE] = [lookup.get(k, 0) for k in keys]
    return out
