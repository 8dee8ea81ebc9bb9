"""Runs: the course's shared result shape ``{query_id: {doc_id: score}}``.

A *run* is the TREC/ranx dict format (larger score = better): what retrieval produces, what
:func:`recsys_kit.metrics.evaluate` scores, what fusion, re-ranking, A/B tests and CF evaluation
pass around. This module is its one home:

* :data:`Run` -- the type.
* :func:`ranked_docs` -- **the one tie rule**: score descending, ties by doc id ascending
  (ids of mixed, non-comparable types compare by their string form). Ascending id matches
  :func:`recsys_kit.ranking.topk`'s "lower index wins", so numbers are reproducible.
* Builders: :func:`to_run` from ``(scores, indices)`` arrays (top-k, BM25, FAISS),
  :func:`scores_to_run` from a pairs frame and one score per pair, :func:`drop_zero_scores`
  for lexical runs whose zero scores mean "no term matched".

Example:
    >>> ranked_docs({"b": 1.0, "a": 1.0, "c": 2.0})
    ['c', 'a', 'b']
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C

__all__ = ["Run", "drop_zero_scores", "matrix_to_run", "ranked_docs", "scores_to_run", "to_run"]

Run = dict[Hashable, dict[Hashable, float]]


def ranked_docs(doc_scores: Mapping[Hashable, float]) -> list[Hashable]:
    """Doc ids of one query's results, best first (score desc, then doc id asc).

    Two C-level stable sorts (ids, then scores reversed) and no per-doc tuples: this runs once
    per query in every evaluation.

    Example:
        >>> ranked_docs({"b": 1.0, "a": 1.0, "c": 2.0})
        ['c', 'a', 'b']
    """
    try:
        ids = sorted(doc_scores)
    except TypeError:  # mixed, non-comparable id types: compare their string forms
        ids = sorted(doc_scores, key=str)
    ids.sort(key=doc_scores.__getitem__, reverse=True)  # reverse sort is stable in CPython
    return ids


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(x.cpu() if hasattr(x, "cpu") else x)


def to_run(
    query_ids: Sequence[Hashable],
    scores: Any,
    indices: Any,
    doc_ids: Sequence[Hashable],
) -> Run:
    """Convert ``(scores, indices)`` arrays into a run dict.

    Args:
        query_ids: one id per row.
        scores: (n_queries, k) scores (numpy array or torch tensor).
        indices: (n_queries, k) row indices into ``doc_ids``; negative indices (FAISS's
            "no result" marker) are skipped.
        doc_ids: the id of each indexed document.

    Returns:
        ``{query_id: {doc_id: score}}``.

    Example:
        >>> to_run(["q1"], np.array([[0.9, 0.5]]), np.array([[1, 0]]), ["a", "b"])
        {'q1': {'b': 0.9, 'a': 0.5}}
    """
    s = _as_numpy(scores).astype(np.float64, copy=False)
    i = _as_numpy(indices)
    if s.ndim == 1 and i.ndim == 1:
        s, i = s[None, :], i[None, :]
    if s.shape != i.shape or s.ndim != 2:
        raise ValueError(f"scores {s.shape} and indices {i.shape} must both be (n_queries, k)")
    if len(query_ids) != s.shape[0]:
        raise ValueError(f"got {len(query_ids)} query ids for {s.shape[0]} rows of results")
    if i.size and int(i.max()) >= len(doc_ids):
        raise ValueError(f"index {int(i.max())} out of range for {len(doc_ids)} doc ids")
    run: Run = {}
    for qid, srow, irow in zip(query_ids, s.tolist(), i.tolist(), strict=True):
        run[qid] = {doc_ids[j]: v for v, j in zip(srow, irow, strict=True) if j >= 0}
    return run


def matrix_to_run(
    query_ids: Sequence[Hashable],
    scores: Any,
    doc_ids: Sequence[Hashable],
    k: int = 100,
) -> Run:
    """The top ``k`` docs of each row of a dense score matrix, as a run.

    Ties keep the lower column first (a stable sort), the course's one tie rule.

    Args:
        query_ids: one id per row.
        scores: (n_queries, n_docs) scores, numpy or torch; NaN is not allowed.
        doc_ids: one id per column.
        k: docs kept per query (all of them when ``k`` exceeds ``n_docs``).

    Returns:
        ``{query_id: {doc_id: score}}``.

    Example:
        >>> matrix_to_run(["q"], np.array([[0.2, 0.9, 0.9]]), ["a", "b", "c"], k=2)
        {'q': {'b': 0.9, 'c': 0.9}}
    """
    s = _as_numpy(scores)
    if s.ndim != 2 or s.shape[1] != len(doc_ids):
        raise ValueError(f"scores {s.shape} must be (n_queries, {len(doc_ids)} docs)")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN: score every doc (or drop it) first")
    if k <= 0:
        raise ValueError(f"k must be >= 1, got {k}")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return to_run(query_ids, np.take_along_axis(s, top, axis=1), top, doc_ids)


def drop_zero_scores(run: Mapping[Hashable, Mapping[Hashable, float]]) -> Run:
    """The run without its zero-score docs (a BM25 score of 0 means no query term matched).

    Example:
        >>> drop_zero_scores({"q": {"a": 2.5, "b": 0.0}})
        {'q': {'a': 2.5}}
    """
    return {q: {d: s for d, s in docs.items() if s != 0} for q, docs in run.items()}


def scores_to_run(pairs: pd.DataFrame, scores: Sequence[float] | np.ndarray) -> dict:
    """``{query_id: {product_id: score}}`` from pairs and one score per pair.

    Example:
        >>> scores_to_run(pd.DataFrame({"query_id": ["q"], "product_id": ["a"]}), [0.5])
        {'q': {'a': 0.5}}
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (len(pairs),):
        raise ValueError(f"got {s.shape} scores for {len(pairs)} pairs; pass one per pair")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    run: dict[str, dict[str, float]] = {}
    for q, p, v in zip(pairs[C.COL_QUERY_ID].astype(str), pairs[C.COL_PRODUCT_ID].astype(str), s):
        run.setdefault(q, {})[p] = float(v)
    return run
