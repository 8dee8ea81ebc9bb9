"""Query splits and candidate pools: which queries train, which test, which pairs to score.

Example:
    >>> train, test = train_test_queries([f"q{i}" for i in range(10)], frac=0.3)
    >>> len(train), len(test)
    (7, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from recsys_kit import constants as C
from recsys_kit.ranking import topk

__all__ = ["candidate_pairs", "train_test_queries"]


def train_test_queries(
    queries: pd.DataFrame | Sequence[str],
    frac: float = 0.3,
    seed: int = C.SEED,
    stratify: str | None = C.COL_QUERY_KIND,
) -> tuple[list[str], list[str]]:
    """Split query ids into train and held-out test queries.

    Args:
        queries: the queries frame (``query_id`` column) or a list of ids.
        frac: fraction held out as test, in (0, 1).
        seed: shuffle seed.
        stratify: column to split within (each query kind keeps its share); None or a
            missing column = plain random split.

    Returns:
        ``(train_ids, test_ids)``, each in the input order.

    Example:
        >>> train, test = train_test_queries([f"q{i}" for i in range(10)], frac=0.3)
        >>> len(train), len(test)
        (7, 3)
    """
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac (the test share) must be in (0, 1), got {frac}")
    if isinstance(queries, pd.DataFrame):
        if C.COL_QUERY_ID not in queries.columns:
            raise KeyError("queries frame has no 'query_id' column")
        ids = queries[C.COL_QUERY_ID].astype(str).to_numpy()
        strata = (
            queries[stratify].astype(str).to_numpy()
            if stratify and stratify in queries.columns
            else np.zeros(len(ids), dtype=str)
        )
    else:
        ids = np.asarray(list(queries)).astype(str)
        strata = np.zeros(len(ids), dtype=str)
    if len(set(ids)) != len(ids):
        raise ValueError("query ids are not unique")
    if len(ids) < 2:
        raise ValueError("need at least two queries to split")
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(ids), dtype=bool)
    for s in sorted(set(strata)):
        rows = np.flatnonzero(strata == s)
        # at least one test and one train query per stratum when it has two or more
        n_test = int(np.clip(round(frac * len(rows)), 1, len(rows) - 1)) if len(rows) > 1 else 0
        is_test[rng.permutation(rows)[:n_test]] = True
    return ids[~is_test].tolist(), ids[is_test].tolist()


def candidate_pairs(
    query_ids: Sequence[str],
    query_vecs: np.ndarray,
    product_ids: Sequence[str],
    product_vecs: np.ndarray,
    k: int = 50,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Top-k semantic candidates per query: the pool the scorers re-rank.

    Args:
        query_ids, query_vecs: ids and (n_q, d) vectors, aligned.
        product_ids, product_vecs: ids and (n_p, d) vectors, aligned.
        k: candidates per query.
        device: for :func:`recsys_kit.ranking.topk`.

    Returns:
        Frame ``query_id``, ``product_id``, ``rank`` (1-based), ``cosine``.
    """

    if len(query_ids) != len(query_vecs) or len(product_ids) != len(product_vecs):
        raise ValueError("ids and vectors must be aligned (same number of rows)")
    scores, idx = topk(np.asarray(query_vecs), np.asarray(product_vecs), k=k, device=device)
    n_q = len(query_ids)
    return pd.DataFrame(
        {
            C.COL_QUERY_ID: np.repeat(np.asarray(query_ids).astype(str), k),
            C.COL_PRODUCT_ID: np.asarray(product_ids).astype(str)[idx.ravel()],
            "rank": np.tile(np.arange(1, k + 1), n_q),
            "cosine": scores.ravel().astype(np.float64),
        }
    )
