"""Pair features: one row of ranking signals per (query, product) pair, all vectorised.

Definitions in :mod:`recsys_kit.scoring`. :func:`quality_prior` is the query-independent half
(rating and popularity) as one value per product, the prior that Module 8 mixes into a run.

Example:
    >>> cat = pd.DataFrame({"product_id": ["a", "b"], "rating": [5.0, 3.0],
    ...                     "review_count": [0, 99]})
    >>> quality_prior(cat).round(2).tolist()
    [0.5, 0.75]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.scoring.lexicon import (
    NEUTRAL_SATISFIES,
    QueryParser,
    build_lexicon,
    parse_price,
    price_fit,
)

__all__ = [
    "FEATURES",
    "attribute_match",
    "feature_matrix",
    "pair_features",
    "popularity_score",
    "quality_prior",
    "rating_score",
]


#: Feature columns produced by :func:`pair_features`, in order.
FEATURES: tuple[str, ...] = ("distance", "attr_match", "rating", "price_fit", "popularity")


def _positions(ids: pd.Series, index_ids: pd.Series, what: str) -> np.ndarray:
    lookup = pd.Index(index_ids.astype(str))
    if not lookup.is_unique:
        raise ValueError(f"{what} ids are not unique; drop duplicate rows first")
    pos = lookup.get_indexer(ids.astype(str))
    if (pos < 0).any():
        bad = ids.astype(str)[pos < 0].iloc[0]
        raise KeyError(f"pair refers to {what} {bad!r}, which is not in the {what} frame")
    return pos


def _product_attr_matrix(catalog: pd.DataFrame, keys: list[tuple[str, str]]) -> np.ndarray:
    """(n_products, n_keys) bool: does the product satisfy query value ``key``."""
    out = np.zeros((len(catalog), len(keys)), dtype=bool)
    for j, (col, value) in enumerate(keys):
        vals = catalog[col].astype(str).to_numpy()
        ok = vals == value
        for neutral, satisfied in NEUTRAL_SATISFIES.items():
            if neutral[0] == col and value in satisfied:
                ok |= vals == neutral[1]
        out[:, j] = ok
    return out


def attribute_match(
    queries: Sequence[str],
    catalog: pd.DataFrame,
    lexicon: pd.DataFrame | None = None,
) -> np.ndarray:
    """Attribute match of every query with every product (dense matrix).

    ``s[q, p]`` = (query words whose meaning the product has) / (query words); 0 when the
    query has no attribute word (constant within the query, so it does not change its ranking).
    A unisex product satisfies "women"/"men", an all-season one every season.

    Args:
        queries: query texts.
        catalog: products (rows of the result).
        lexicon: from :func:`build_lexicon`; default built from ``catalog``.

    Returns:
        float32 array (n_queries, n_products) in [0, 1].

    Example:
        >>> cat = pd.DataFrame({"color": ["red", "blue"], "category": ["dress", "dress"]})
        >>> attribute_match(["red dress"], cat, build_lexicon(cat, ["color", "category"]))
        array([[1. , 0.5]], dtype=float32)
    """
    lex = build_lexicon(catalog) if lexicon is None else lexicon
    parser = QueryParser(lex)
    parsed = [parser.parse(q) for q in queries]
    keys = sorted({k for words in parsed for word in words for k in word})
    key_pos = {k: j for j, k in enumerate(keys)}
    words = [word for q_words in parsed for word in q_words]
    out = np.zeros((len(parsed), len(catalog)), dtype=np.float32)
    if not words:
        return out
    # word x key incidence, product x key satisfaction -> word x product hits (one matmul)
    word_keys = np.zeros((len(words), len(keys)), dtype=np.float32)
    for i, word in enumerate(words):
        word_keys[i, [key_pos[k] for k in word]] = 1.0
    prod_keys = _product_attr_matrix(catalog, keys).astype(np.float32)
    hits = (word_keys @ prod_keys.T) > 0  # (n_words, n_products)
    owner = np.repeat(np.arange(len(parsed)), [len(w) for w in parsed])
    counts = np.zeros_like(out)
    np.add.at(counts, owner, hits.astype(np.float32))
    n_words = np.array([len(w) for w in parsed], dtype=np.float32)
    np.divide(counts, n_words[:, None], out=out, where=n_words[:, None] > 0)
    return out


def rating_score(catalog: pd.DataFrame) -> np.ndarray:
    """The ``rating`` feature per product: rating mapped from [1, 5] to [0, 1].

    A missing rating gets the catalog's mean rating (no reward, no penalty for being new).

    Example:
        >>> rating_score(pd.DataFrame({"rating": [5.0, 1.0, None]})).tolist()
        [1.0, 0.0, 0.5]
    """
    rating = catalog[C.COL_RATING].astype(float).to_numpy()
    rating = np.where(np.isnan(rating), np.nanmean(rating), rating)
    return np.clip((rating - 1.0) / 4.0, 0.0, 1.0)


def popularity_score(catalog: pd.DataFrame) -> np.ndarray:
    """The ``popularity`` feature per product: ``log(1 + review_count)`` over the catalog maximum.

    Example:
        >>> popularity_score(pd.DataFrame({"review_count": [0, 9, 99]})).round(2).tolist()
        [0.0, 0.5, 1.0]
    """
    pop = np.log1p(catalog[C.COL_REVIEW_COUNT].astype(float).clip(lower=0).to_numpy())
    return pop / pop.max() if pop.max() > 0 else np.zeros_like(pop)


def quality_prior(catalog: pd.DataFrame, rating_weight: float = 0.5) -> pd.Series:
    """A query-independent quality value per product in [0, 1]: rating and popularity mixed.

    ``rating_weight * rating + (1 - rating_weight) * popularity``, the two features of
    :func:`pair_features` that do not depend on the query; pass it as the ``prior`` of
    :func:`recsys_kit.hybrid.with_prior`.

    Args:
        catalog: products with ``product_id``, ``rating`` and ``review_count``.
        rating_weight: share of the rating, in [0, 1] (half and half by default).

    Returns:
        float64 Series indexed by ``product_id``.

    Example:
        >>> cat = pd.DataFrame({"product_id": ["a", "b"], "rating": [5.0, 3.0],
        ...                     "review_count": [0, 99]})
        >>> quality_prior(cat).round(2).tolist()
        [0.5, 0.75]
    """
    missing = [c for c in (C.COL_PRODUCT_ID, C.COL_RATING, C.COL_REVIEW_COUNT) if c not in catalog]
    if missing:
        raise KeyError(f"catalog lacks column(s) {missing}; load it with load_catalog()")
    if not 0.0 <= rating_weight <= 1.0:
        raise ValueError(f"rating_weight must be in [0, 1], got {rating_weight}")
    value = rating_weight * rating_score(catalog) + (1 - rating_weight) * popularity_score(catalog)
    return pd.Series(value, index=pd.Index(catalog[C.COL_PRODUCT_ID], name=C.COL_PRODUCT_ID))


def pair_features(
    queries_df: pd.DataFrame,
    catalog_df: pd.DataFrame,
    pairs: pd.DataFrame,
    query_vecs: np.ndarray,
    product_vecs: np.ndarray,
    lexicon: pd.DataFrame | None = None,
    price_tolerance: float = 0.2,
) -> pd.DataFrame:
    """Features of (query, product) pairs (definitions in the module doc).

    Args:
        queries_df: queries with ``query_id`` and ``query``; row i <-> ``query_vecs[i]``.
        catalog_df: products with ``product_id``, attributes, ``price``, ``rating``,
            ``review_count``; row i <-> ``product_vecs[i]``.
        pairs: frame with ``query_id`` and ``product_id`` columns (other columns are kept).
        query_vecs: (n_queries, dim) embeddings (unit rows for the ``2 - 2 cos`` reading).
        product_vecs: (n_products, dim) embeddings from the same model.
        lexicon: from :func:`build_lexicon`; default built from ``catalog_df``.
        price_tolerance: see :func:`price_fit`.

    Returns:
        ``pairs`` (fresh index) with the :data:`FEATURES` columns appended (float64).

    Example:
        >>> feats = pair_features(queries, catalog, pairs, qv, pv)      # doctest: +SKIP
        >>> feats[list(FEATURES)].describe()                            # doctest: +SKIP
    """
    for name, df, cols in (
        ("queries_df", queries_df, [C.COL_QUERY_ID, C.COL_QUERY]),
        ("catalog_df", catalog_df, [C.COL_PRODUCT_ID, C.COL_PRICE, C.COL_RATING,
                                    C.COL_REVIEW_COUNT]),
        ("pairs", pairs, [C.COL_QUERY_ID, C.COL_PRODUCT_ID]),
    ):  # fmt: skip
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise KeyError(f"{name} lacks column(s) {missing}")
    qv = np.asarray(query_vecs, dtype=np.float32)
    pv = np.asarray(product_vecs, dtype=np.float32)
    if qv.ndim != 2 or pv.ndim != 2 or qv.shape[1] != pv.shape[1]:
        raise ValueError(
            f"query_vecs {qv.shape} and product_vecs {pv.shape} must be 2-D with the same "
            "dimension; encode queries and products with the same model"
        )
    if len(qv) != len(queries_df) or len(pv) != len(catalog_df):
        raise ValueError(
            f"got {len(qv)} query vectors for {len(queries_df)} queries and {len(pv)} product "
            f"vectors for {len(catalog_df)} products; rows must be aligned"
        )
    qi = _positions(pairs[C.COL_QUERY_ID], queries_df[C.COL_QUERY_ID], "query")
    pi = _positions(pairs[C.COL_PRODUCT_ID], catalog_df[C.COL_PRODUCT_ID], "product")
    out = pairs.reset_index(drop=True).copy()
    # ||u - v||^2 directly (not 2 - 2 cos): also right for vectors that are not unit length.
    out["distance"] = ((qv[qi] - pv[pi]) ** 2).sum(axis=1).astype(np.float64)
    # attribute match: only the queries and products that occur in pairs
    uq, q_inv = np.unique(qi, return_inverse=True)
    up, p_inv = np.unique(pi, return_inverse=True)
    lex = build_lexicon(catalog_df) if lexicon is None else lexicon
    sub_cat = catalog_df.iloc[up].reset_index(drop=True)
    texts = queries_df[C.COL_QUERY].astype(str).to_numpy()[uq].tolist()
    out["attr_match"] = attribute_match(texts, sub_cat, lex)[q_inv, p_inv].astype(np.float64)
    out["rating"] = rating_score(catalog_df)[pi]
    bounds = np.array([parse_price(t) for t in texts], dtype=float)  # None -> nan
    price = catalog_df[C.COL_PRICE].astype(float).to_numpy()
    out["price_fit"] = price_fit(price[pi], bounds[q_inv, 0], bounds[q_inv, 1], price_tolerance)
    out["popularity"] = popularity_score(catalog_df)[pi]
    return out


def feature_matrix(features: pd.DataFrame | np.ndarray, names: Sequence[str] | None) -> np.ndarray:
    """Features as a float64 matrix (a fresh copy), checked finite; a frame is read by ``names``."""
    if isinstance(features, pd.DataFrame):
        cols = list(names) if names is not None else [c for c in FEATURES if c in features]
        missing = [c for c in cols if c not in features.columns]
        if missing or not cols:
            raise KeyError(
                f"features lack column(s) {missing or list(FEATURES)}; build them with "
                "pair_features()"
            )
        x = np.array(features[cols].to_numpy(dtype=np.float64))  # writable copy for torch
    else:
        x = np.array(features, dtype=np.float64)  # a copy: callers' arrays stay untouched
        if x.ndim != 2:
            raise ValueError(f"features must be 2-D (n_pairs, n_features), got {x.shape}")
        if names is not None and len(names) != x.shape[1]:
            raise ValueError(f"{len(names)} feature names for {x.shape[1]} columns")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf; fill or drop those pairs first")
    return x
