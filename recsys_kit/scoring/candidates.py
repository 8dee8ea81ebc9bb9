"""Candidate pools: the top-k semantic candidates per query that the scorers re-rank.

The query split (:func:`train_test_queries`) lives with the other splitters in
:mod:`recsys_kit.datasets.splits`.

Example:
    >>> candidate_pairs(["q"], np.eye(2)[:1], ["a", "b"], np.eye(2), k=1)[["product_id", "rank"]]
      product_id  rank
    0          a     1
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from recsys_kit import constants as C
from recsys_kit.ranking import topk

__all__ = ["candidate_pairs"]


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
