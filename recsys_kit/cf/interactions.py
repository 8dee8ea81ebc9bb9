"""From an interaction log to the user x item matrix that every CF model trains on.

Implicit feedback (views, clicks, carts, purchases) says *how strongly* a user engaged with a
product, never that they disliked one. :func:`build_matrix` turns the log into a sparse matrix
of **confidence weights**: each event adds its weight from
:data:`recsys_kit.constants.EVENT_WEIGHTS` (view 1, click 2, cart 3, rating 4, purchase 5), so a
user who viewed a product twice and bought it once gets ``1 + 1 + 5 = 7`` in that cell.

Rows and columns are ordered by sorted id (deterministic), and the ids come back as
``pandas.Index`` objects: ``item_index[j]`` is the product of column ``j`` and
``item_index.get_indexer(ids)`` maps product ids back to columns.

**The time-based split is respected**: when the log has a ``split`` column, only the
``"train"`` rows are used unless you ask otherwise, so a model never sees test events.

Example:
    >>> import pandas as pd
    >>> log = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "product_id": ["a", "b", "a"],
    ...                     "event": ["view", "purchase", "click"]})
    >>> X, users, items = build_matrix(log)
    >>> X.toarray().tolist(), list(users), list(items)
    ([[1.0, 5.0], [2.0, 0.0]], ['u1', 'u2'], ['a', 'b'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_kit.constants import (
    COL_EVENT,
    COL_PRODUCT_ID,
    COL_SPLIT,
    COL_USER_ID,
    EVENT_WEIGHTS,
)
from recsys_kit.datasets.frames import check_columns, sorted_unique
from recsys_kit.datasets.splits import (  # re-exported: their home is datasets.splits
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VALID,
    leave_last_out,
    split_frames,
)

__all__ = [
    "AGGREGATIONS",
    "SPLIT_TEST",
    "SPLIT_TRAIN",
    "SPLIT_VALID",
    "build_matrix",
    "event_weights",
    "leave_last_out",
    "split_frames",
]

AGGREGATIONS = ("sum", "max")


def event_weights(
    interactions: pd.DataFrame, weights: Mapping[str, float] | None = EVENT_WEIGHTS
) -> np.ndarray:
    """Confidence weight of each row of an interaction log.

    Args:
        interactions: log with an ``event`` column (or none, when ``weights`` is None).
        weights: weight per event name; ``None`` gives every row weight 1 (binary feedback).

    Returns:
        float64 array, one weight per row.

    Raises:
        ValueError: on an event that has no weight, naming it.

    Example:
        >>> event_weights(pd.DataFrame({"event": ["view", "purchase"]})).tolist()
        [1.0, 5.0]
    """
    if weights is None:
        return np.ones(len(interactions), dtype=np.float64)
    check_columns(interactions, [COL_EVENT], "interactions")
    w = interactions[COL_EVENT].map(dict(weights))
    if w.isna().any():
        unknown = sorted(map(str, set(interactions.loc[w.isna(), COL_EVENT])))
        raise ValueError(
            f"events {unknown} have no weight in {dict(weights)}; add them to `weights` "
            "(or pass weights=None for binary feedback)"
        )
    return w.to_numpy(dtype=np.float64)


def build_matrix(
    interactions: pd.DataFrame,
    weights: Mapping[str, float] | None = EVENT_WEIGHTS,
    users: Iterable | None = None,
    items: Iterable | None = None,
    *,
    split: str | None = "train",
    aggregate: Literal["sum", "max"] = "sum",
    unknown: Literal["raise", "drop"] = "raise",
) -> tuple[sp.csr_matrix, pd.Index, pd.Index]:
    """Build the sparse user x item confidence matrix.

    Args:
        interactions: log with ``user_id``, ``product_id`` and ``event`` columns.
        weights: weight per event (default :data:`~recsys_kit.constants.EVENT_WEIGHTS`);
            ``None`` counts every event as 1.
        users: ids of the rows, in order; default: the users of the log, sorted.
        items: ids of the columns, in order; default: **every product of the log, whatever its
            split**, sorted, so a product that appears only in the test (or validation) rows
            still gets an (empty) column and can be recommended. Pass the whole catalogue to
            get columns for products nobody touched at all, which the hybrid recommender scores
            from content (cold start).
        split: keep only rows whose ``split`` column equals this (default ``"train"``), so
            test events never leak into training; ``None`` keeps every row. Ignored when the
            log has no ``split`` column.
        aggregate: how repeated events of a (user, product) pair combine: ``"sum"`` (default,
            more engagement = more confidence) or ``"max"`` (strongest event).
        unknown: what to do with rows whose user or product is not in ``users``/``items``:
            ``"raise"`` (default) or ``"drop"`` them.

    Returns:
        ``(matrix, user_index, item_index)``: a float32 ``csr_matrix`` of shape
        ``(len(user_index), len(item_index))`` and the ids of its rows and columns.

    Example:
        >>> log = pd.DataFrame({"user_id": [1, 1], "product_id": [7, 7], "event": ["view", "cart"]})
        >>> build_matrix(log, aggregate="max")[0].toarray().tolist()
        [[3.0]]
    """
    check_columns(interactions, [COL_USER_ID, COL_PRODUCT_ID], "interactions")
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {AGGREGATIONS}, got {aggregate!r}")
    if unknown not in ("raise", "drop"):
        raise ValueError(f"unknown must be 'raise' or 'drop', got {unknown!r}")
    df = interactions
    all_products = df[COL_PRODUCT_ID]  # the candidates: every product of the log
    if split is not None and COL_SPLIT in df.columns:
        df = df[df[COL_SPLIT] == split]
        if len(df) == 0 and len(interactions):
            raise ValueError(
                f"no rows with {COL_SPLIT} == {split!r} (values present: "
                f"{sorted(map(str, interactions[COL_SPLIT].unique()))}); pass split=None to use "
                "every row"
            )
    user_index = sorted_unique(df[COL_USER_ID]) if users is None else pd.Index(list(users))
    item_index = sorted_unique(all_products) if items is None else pd.Index(list(items))
    for name, index in (("users", user_index), ("items", item_index)):
        if not index.is_unique:
            dup = index[index.duplicated()][:3].tolist()
            raise ValueError(f"{name} contains duplicate ids, e.g. {dup}; pass distinct ids")

    w = event_weights(df, weights)
    rows = user_index.get_indexer(df[COL_USER_ID])
    cols = item_index.get_indexer(df[COL_PRODUCT_ID])
    bad = (rows < 0) | (cols < 0)
    if bad.any():
        if unknown == "raise":
            first = df.iloc[int(np.flatnonzero(bad)[0])]
            raise ValueError(
                f"{int(bad.sum())} interaction(s) refer to users/products outside the given "
                f"`users`/`items` (first: user {first[COL_USER_ID]!r}, product "
                f"{first[COL_PRODUCT_ID]!r}); add them or pass unknown='drop'"
            )
        rows, cols, w = rows[~bad], cols[~bad], w[~bad]
    shape = (len(user_index), len(item_index))
    if aggregate == "sum":
        # COO -> CSR adds duplicate (row, col) entries: exactly the sum we want.
        matrix = sp.csr_matrix((w, (rows, cols)), shape=shape, dtype=np.float64)
    else:
        key = rows.astype(np.int64) * shape[1] + cols
        order = np.lexsort((-w, key))  # per pair, the largest weight first
        first = np.ones(len(order), dtype=bool)
        first[1:] = key[order][1:] != key[order][:-1]
        keep = order[first]
        matrix = sp.csr_matrix((w[keep], (rows[keep], cols[keep])), shape=shape)
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix.astype(np.float32), user_index, item_index
