"""User profiles: who is this shopper, as a vector and as a table.

* :func:`behaviour_profiles` / :func:`behaviour_profile` -- what the user *did*: the weighted
  average of the embeddings of the products they interacted with (event weights, optionally
  decayed with age so last week counts more than last year), L2-normalised so it can be
  compared with product vectors by a dot product.
* :func:`preference_profile` -- what the user *likes*, readable: the share of their engagement
  per category, price band and colour, one row per user.
* :func:`text_profile` -- what the user *says*: their own words ("I like minimalist black
  leather things") embedded with the same encoder as the products.

Example:
    >>> import pandas as pd
    >>> log = pd.DataFrame({"user_id": ["u", "u"], "product_id": [0, 1],
    ...                     "event": ["view", "purchase"]})
    >>> vecs = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> behaviour_profile("u", log, vecs).astype(float).round(3).tolist()  # (1,5) normalised
    [0.196, 0.981]
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_kit.cf.interactions import event_weights
from recsys_kit.constants import (
    COL_CATEGORY,
    COL_COLOR,
    COL_PRICE,
    COL_PRODUCT_ID,
    COL_SPLIT,
    COL_TIMESTAMP,
    COL_USER_ID,
    EVENT_WEIGHTS,
)
from recsys_kit.datasets.frames import check_columns, sorted_unique

__all__ = [
    "PRICE_BANDS",
    "Encoder",
    "l2_normalize_rows",
    "decay_factors",
    "behaviour_profiles",
    "behaviour_profile",
    "price_bands",
    "preference_profile",
    "text_profile",
]

#: Labels of the price bands of :func:`preference_profile` (catalogue price quartiles).
PRICE_BANDS = ("budget", "mid", "upper", "premium")
_EPS = 1e-12


class Encoder(Protocol):
    def encode(self, texts: Sequence[str], *, kind: str = ...) -> np.ndarray: ...


def l2_normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (no NaN)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > _EPS)


def _item_rows(
    item_vectors: Any, item_ids: Sequence[Hashable] | None
) -> tuple[np.ndarray, pd.Index]:
    """The vectors as float32 plus the product id of each row."""
    if isinstance(item_vectors, pd.DataFrame):
        return item_vectors.to_numpy(dtype=np.float32), pd.Index(item_vectors.index)
    vectors = np.asarray(item_vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"item_vectors must be 2-D (n_products, dim), got shape {vectors.shape}")
    if item_ids is None:
        return vectors, pd.RangeIndex(len(vectors))
    index = pd.Index(list(item_ids))
    if len(index) != len(vectors):
        raise ValueError(
            f"item_ids has {len(index)} ids for {len(vectors)} vectors; pass one id per row"
        )
    return vectors, index


def decay_factors(
    interactions: pd.DataFrame, half_life: float, now: Any | None = None
) -> np.ndarray:
    """Exponential time decay ``0.5 ** (age / half_life)`` per row.

    Age is measured from ``now`` (default: each user's own latest event, so a user who was
    away for a month keeps their profile). With datetime timestamps ``half_life`` is in days;
    with numeric timestamps it is in timestamp units.

    Example:
        >>> df = pd.DataFrame({"user_id": [1, 1], "timestamp": [0, 10]})
        >>> decay_factors(df, half_life=10).tolist()
        [0.5, 1.0]
    """
    if half_life <= 0:
        raise ValueError(f"half_life must be > 0, got {half_life}")
    check_columns(interactions, [COL_USER_ID, COL_TIMESTAMP], "interactions")
    ts = interactions[COL_TIMESTAMP]
    if pd.api.types.is_datetime64_any_dtype(ts):
        t = (ts - pd.Timestamp(0, tz=getattr(ts.dt, "tz", None))).dt.total_seconds() / 86400.0
        ref = (
            None
            if now is None
            else (
                pd.Timestamp(now) - pd.Timestamp(0, tz=getattr(ts.dt, "tz", None))
            ).total_seconds()
            / 86400.0
        )
    else:
        t = ts.astype(np.float64)
        ref = None if now is None else float(now)
    if ref is None:
        ref_per_row = t.groupby(interactions[COL_USER_ID].to_numpy()).transform("max")
    else:
        ref_per_row = pd.Series(ref, index=t.index)
    age = (ref_per_row - t).to_numpy(dtype=np.float64).clip(min=0.0)
    return 0.5 ** (age / half_life)


def behaviour_profiles(
    interactions: pd.DataFrame,
    item_vectors: Any,
    item_ids: Sequence[Hashable] | None = None,
    *,
    weights: Mapping[str, float] | None = EVENT_WEIGHTS,
    half_life: float | None = None,
    now: Any | None = None,
    split: str | None = "train",
) -> tuple[np.ndarray, pd.Index]:
    """Behaviour profile of every user at once: one sparse (users x products) product.

    Args:
        interactions: log with ``user_id``, ``product_id``, ``event`` (and ``timestamp`` for
            decay). Rows whose ``split`` differs from ``split`` are ignored (None: use all).
        item_vectors: (n_products, dim) product embeddings, or a DataFrame indexed by id.
        item_ids: product id of each row of ``item_vectors``; default: rows are numbered
            0..n-1 and ``product_id`` holds those numbers.
        weights: event weights (None: every event counts 1).
        half_life: optional time decay (see :func:`decay_factors`).
        now: reference time for the decay.

    Returns:
        ``(profiles, user_index)``: float32 (n_users, dim) unit rows (zero for a user whose
        products all lack vectors) and the user id of each row.
    """
    check_columns(interactions, [COL_USER_ID, COL_PRODUCT_ID], "interactions")
    vectors, index = _item_rows(item_vectors, item_ids)
    df = interactions
    if split is not None and COL_SPLIT in df.columns:
        df = df[df[COL_SPLIT] == split]
    missing = ~df[COL_PRODUCT_ID].isin(index)
    if missing.all() and len(df):
        raise ValueError(
            f"none of the interacted products (e.g. {df[COL_PRODUCT_ID].iloc[0]!r}) has a vector; "
            "pass item_ids (one product id per row of item_vectors)"
        )
    df = df[~missing]
    w = event_weights(df, weights)
    if half_life is not None:
        w = w * decay_factors(df, half_life, now)
    users = sorted_unique(df[COL_USER_ID])
    rows = users.get_indexer(df[COL_USER_ID])
    cols = index.get_indexer(df[COL_PRODUCT_ID])
    # Row u of this matrix holds u's weight per product; times the vectors = weighted sum.
    matrix = sp.csr_matrix((w, (rows, cols)), shape=(len(users), len(index)))
    return l2_normalize_rows(matrix @ vectors), users


def behaviour_profile(
    user: Hashable,
    interactions: pd.DataFrame,
    item_vectors: Any,
    item_ids: Sequence[Hashable] | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Behaviour profile of one user (see :func:`behaviour_profiles` for the arguments).

    Returns:
        float32 (dim,) unit vector.

    Raises:
        KeyError: when the user has no interaction with a product that has a vector.
    """
    check_columns(interactions, [COL_USER_ID], "interactions")
    mine = interactions[interactions[COL_USER_ID] == user]
    if len(mine) == 0:
        raise KeyError(f"user {user!r} has no interactions (a cold-start user: try text_profile)")
    profiles, _ = behaviour_profiles(mine, item_vectors, item_ids, **kwargs)
    if len(profiles) == 0:
        raise KeyError(f"user {user!r} has no interactions in the requested split")
    return profiles[0]


def price_bands(prices: pd.Series, labels: Sequence[str] = PRICE_BANDS) -> pd.Series:
    """Price band of each product: catalogue quantiles (quartiles by default).

    Example:
        >>> price_bands(pd.Series([1.0, 2.0, 3.0, 4.0])).tolist()
        ['budget', 'mid', 'upper', 'premium']
    """
    return pd.qcut(prices.rank(method="first"), len(labels), labels=list(labels)).astype(str)


def preference_profile(
    interactions: pd.DataFrame,
    catalog: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = EVENT_WEIGHTS,
    aspects: Iterable[str] = (COL_CATEGORY, "price_band", COL_COLOR),
    split: str | None = "train",
) -> pd.DataFrame:
    """Readable taste profile: each user's share of engagement per category, price band, colour.

    Shares are event-weighted (a purchase counts 5 views) and sum to 1 within each aspect.
    Price bands are the catalogue's price quartiles (:data:`PRICE_BANDS`).

    Args:
        interactions: log with ``user_id``, ``product_id``, ``event``.
        catalog: products with ``product_id`` and the aspect columns (``price`` for bands).
        weights: event weights (None: every event counts 1).
        aspects: which aspects to profile; ``"price_band"`` is derived from ``price``.
        split: only rows of this split (None: all rows).

    Returns:
        DataFrame indexed by ``user_id`` with two column levels ``(aspect, value)``, e.g.
        ``prefs["category"]`` is a users x categories share table and
        ``prefs["category"].idxmax(axis=1)`` each user's favourite category; plus
        ``("stats", "n_events")`` and ``("stats", "mean_price")``.

    Example:
        >>> cat = pd.DataFrame({"product_id": [0, 1], "category": ["shoes", "bags"],
        ...                     "color": ["black", "red"], "price": [10.0, 90.0]})
        >>> log = pd.DataFrame({"user_id": ["u", "u"], "product_id": [0, 1],
        ...                     "event": ["purchase", "view"]})
        >>> preference_profile(log, cat)["category"].round(3).to_dict("records")
        [{'bags': 0.167, 'shoes': 0.833}]
    """
    check_columns(interactions, [COL_USER_ID, COL_PRODUCT_ID], "interactions")
    aspects = list(aspects)
    needed = [COL_PRODUCT_ID] + [a if a != "price_band" else COL_PRICE for a in aspects]
    check_columns(catalog, needed, "catalog")
    if not catalog[COL_PRODUCT_ID].is_unique:
        raise ValueError("catalog has duplicate product_id values; deduplicate it first")
    df = interactions
    if split is not None and COL_SPLIT in df.columns:
        df = df[df[COL_SPLIT] == split]
    products = catalog.set_index(COL_PRODUCT_ID)
    if "price_band" in aspects:
        products = products.assign(price_band=price_bands(products[COL_PRICE]))
    unknown = ~df[COL_PRODUCT_ID].isin(products.index)
    if unknown.any():
        raise ValueError(
            f"{int(unknown.sum())} interaction(s) refer to products missing from the catalog "
            f"(e.g. {df.loc[unknown, COL_PRODUCT_ID].iloc[0]!r}); filter them out first"
        )
    w = pd.Series(event_weights(df, weights), index=df.index)
    joined = products.loc[df[COL_PRODUCT_ID].to_numpy()].reset_index(drop=True)
    user = df[COL_USER_ID].to_numpy()
    weight = w.to_numpy()
    parts = {}
    for aspect in aspects:
        table = pd.crosstab(user, joined[aspect].to_numpy(), values=weight, aggfunc="sum")
        table = table.fillna(0.0)
        parts[aspect] = table.div(table.sum(axis=1), axis=0)
    stats = pd.DataFrame({"n_events": pd.Series(user).value_counts()})
    if COL_PRICE in joined.columns:
        price = joined[COL_PRICE].to_numpy(dtype=np.float64)
        wsum = pd.Series(weight).groupby(user).sum()
        stats["mean_price"] = pd.Series(weight * price).groupby(user).sum() / wsum
    parts["stats"] = stats
    out = pd.concat(parts, axis=1).sort_index()
    out.index.name = COL_USER_ID
    out.columns.names = ["aspect", "value"]
    return out


def text_profile(texts: str | Sequence[str], encoder: Encoder, kind: str = "query") -> np.ndarray:
    """A profile from the user's own words: the normalised mean of their embedded texts.

    Args:
        texts: one text or several (e.g. a stated preference plus past reviews).
        encoder: anything with ``encode(texts, kind=...)`` returning unit rows, such as
            :class:`recsys_kit.encoders.TextEncoder` (use the encoder of the product vectors).
        kind: ``"query"`` (default: the user is asking for something) or ``"passage"``.

    Returns:
        float32 (dim,) unit vector, comparable with the product embeddings.

    Example:
        >>> from recsys_kit.encoders import TextEncoder                        # doctest: +SKIP
        >>> v = text_profile("I like minimalist black leather things",  # doctest: +SKIP
        ...                  TextEncoder())
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError("texts must be one or more non-empty strings, e.g. 'I like black bags'")
    vectors = np.asarray(encoder.encode(texts, kind=kind), dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise ValueError(
            f"encoder.encode returned shape {vectors.shape} for {len(texts)} texts; "
            "expected (n_texts, dim)"
        )
    return l2_normalize_rows(vectors.mean(axis=0))
