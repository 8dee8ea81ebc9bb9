"""Samples of MiniShop that notebooks and widgets share: product subsets and the mini-shop.

* :func:`stratified_subset` -- ``n`` products with every department in proportion.
* :func:`minishop_sample` -- Modules 2 and 5's "mini-shop": a few hundred products and, per
  (language, query kind), queries with an exact match among them, each with the language of
  the titles it is matched against (``target``: cross-lingual queries search the *other*
  language's titles).

Example:
    >>> cat = pd.DataFrame({"department": ["a"] * 6 + ["b"] * 2})
    >>> stratified_subset(cat, 4)["department"].tolist()
    ['a', 'a', 'a', 'b']
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.datasets.frames import check_columns
from recsys_kit.datasets.minishop import qrels_dict

__all__ = ["OTHER_LANGUAGE", "MiniShopSample", "minishop_sample", "stratified_subset"]

#: The other language of each MiniShop language (what a cross-lingual query is matched against).
OTHER_LANGUAGE = {"en": "zh", "zh": "en"}


def stratified_subset(catalog: pd.DataFrame, n: int | None, seed: int = C.SEED) -> pd.DataFrame:
    """A deterministic subset of ``n`` products with every department in proportion.

    The MiniShop catalog is sorted by department, so ``head(n)`` would be all apparel.

    Args:
        catalog: products (a ``department`` column is used when present).
        n: products to keep; ``None`` or ``>= len(catalog)`` keeps all.
        seed: random seed of the shuffle.

    Returns:
        The subset, in catalog order, with a fresh 0..n-1 index.

    Example:
        >>> cat = pd.DataFrame({"department": ["a"] * 6 + ["b"] * 2})
        >>> stratified_subset(cat, 4)["department"].tolist()
        ['a', 'a', 'a', 'b']
    """
    if n is None or n >= len(catalog):
        return catalog.reset_index(drop=True)
    if n < 1:
        raise ValueError(f"n_products must be >= 1 (or None for all), got {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(catalog))
    shuffled = catalog.iloc[order]
    if C.COL_DEPARTMENT in catalog.columns:
        # The i-th shuffled product of a department of size s gets key (i + .5) / s: taking the
        # n smallest keys allocates n proportionally to department sizes (systematic sampling).
        dept = shuffled[C.COL_DEPARTMENT]
        rank = dept.groupby(dept, sort=False).cumcount().to_numpy()
        size = dept.map(dept.value_counts()).to_numpy()
        pick = order[np.argsort((rank + 0.5) / size, kind="stable")[:n]]
    else:
        pick = order[:n]
    return catalog.iloc[np.sort(pick)].reset_index(drop=True)


class MiniShopSample(NamedTuple):
    """The mini-shop: products, sampled queries and their relevance labels."""

    products: pd.DataFrame  #: the products, sorted by ``product_id`` (catalog index kept)
    queries: pd.DataFrame  #: the sampled queries with a ``target`` column ("en" or "zh")
    judged: pd.DataFrame  #: the qrels rows of these products (all queries)
    qrels: dict[str, dict[str, int]]  #: ``{query_id: {product_id: grade}}`` of the sample


def minishop_sample(
    catalog: pd.DataFrame,
    queries: pd.DataFrame,
    qrels: pd.DataFrame,
    n_products: int = 300,
    per_cell: int = 10,
    pool: int = 300,
    seed: int = C.SEED,
) -> MiniShopSample:
    """Modules 2 and 5's mini-shop: a product sample and the queries it can answer.

    ``pool`` products are drawn at random and the first ``n_products`` of them kept, so a
    smaller shop (the grader's) is a subset of the full one. Queries with at least one exact
    ("E") product in the shop are shuffled and ``per_cell`` kept per (language, query kind).

    Args:
        catalog, queries, qrels: MiniShop's frames (``load_catalog()`` etc.).
        n_products: products kept (<= ``pool``).
        per_cell: queries per (language, query kind).
        pool: size of the random draw the products are the head of.
        seed: seed of both draws.

    Returns:
        A :class:`MiniShopSample`; ``queries`` is sorted by ``query_id`` with a fresh index.

    Example:
        >>> from recsys_kit.datasets import load_catalog, load_qrels, load_queries
        >>> shop = minishop_sample(load_catalog(), load_queries(), load_qrels(), 100, 2)
        >>> len(shop.products), set(shop.queries["target"]) <= {"en", "zh"}
        (100, True)
    """
    check_columns(catalog, [C.COL_PRODUCT_ID], "catalog")
    check_columns(queries, [C.COL_QUERY_ID, C.COL_LANGUAGE, C.COL_QUERY_KIND], "queries")
    check_columns(qrels, [C.COL_QUERY_ID, C.COL_PRODUCT_ID, C.COL_LABEL, C.COL_GRADE], "qrels")
    if not 1 <= n_products <= pool:
        raise ValueError(f"n_products must be in [1, pool={pool}], got {n_products}")
    if per_cell < 1:
        raise ValueError(f"per_cell must be >= 1, got {per_cell}")
    drawn = catalog.sample(n=min(pool, len(catalog)), random_state=seed)
    products = drawn.head(n_products).sort_values(C.COL_PRODUCT_ID)
    judged = qrels[qrels[C.COL_PRODUCT_ID].isin(products[C.COL_PRODUCT_ID])]
    has_exact = judged.loc[judged[C.COL_LABEL] == "E", C.COL_QUERY_ID].unique()
    sample = (
        queries[queries[C.COL_QUERY_ID].isin(has_exact)]
        .sample(frac=1.0, random_state=seed)
        .groupby([C.COL_LANGUAGE, C.COL_QUERY_KIND])
        .head(per_cell)
        .sort_values(C.COL_QUERY_ID)
        .reset_index(drop=True)
    )
    cross = sample[C.COL_QUERY_KIND] == "cross_lingual"
    sample["target"] = np.where(
        cross, sample[C.COL_LANGUAGE].map(OTHER_LANGUAGE), sample[C.COL_LANGUAGE]
    )
    truth = qrels_dict(judged[judged[C.COL_QUERY_ID].isin(sample[C.COL_QUERY_ID])])
    return MiniShopSample(products, sample, judged, truth)
