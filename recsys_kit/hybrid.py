"""Hybrid retrieval: fuse lexical and dense result lists.

Runs use the TREC/ranx dict format ``{query_id: {doc_id: score}}`` (larger = better), the same
format :func:`recsys_kit.metrics.evaluate` takes, so fused runs are evaluated directly.

* :func:`rrf` -- reciprocal-rank fusion (Cormack et al., 2009): ``sum_r w_r / (k + rank_r(d))``
  with 1-based ranks; ignores score scales, which is why it is the robust default.
* :func:`weighted_fusion` -- normalise each run's scores per query, then a weighted sum
  (CombSUM). A document missing from a run contributes 0 from that run.
* :func:`to_run` -- turn ``(scores, indices)`` from :func:`recsys_kit.ranking.topk` or
  :meth:`recsys_kit.lexical.BM25Index.search` into a run dict.

Within a run, ranks follow score descending, ties by doc id ascending (the rule of
:mod:`recsys_kit.metrics`), so fusion is deterministic.

Example:
    >>> bm25 = {"q1": {"a": 12.0, "b": 3.0}}
    >>> dense = {"q1": {"b": 0.9, "c": 0.8}}
    >>> sorted(rrf([bm25, dense], k=60)["q1"].items(), key=lambda kv: -kv[1])[0][0]
    'b'
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

Run = dict[Hashable, dict[Hashable, float]]
NORMALIZATIONS = ("minmax", "zscore", None)


def _sort_key(item: tuple[Hashable, float]) -> tuple[float, Any]:
    return (-item[1], item[0])


def ranked_docs(doc_scores: Mapping[Hashable, float]) -> list[Hashable]:
    """Doc ids of one query's results, best first (score desc, then doc id asc)."""
    items = list(doc_scores.items())
    try:
        items.sort(key=_sort_key)
    except TypeError:  # mixed, non-comparable id types: compare their string forms
        items.sort(key=lambda kv: (-kv[1], str(kv[0])))
    return [d for d, _ in items]


def _check_runs(runs: Sequence[Mapping[Hashable, Mapping[Hashable, float]]]) -> None:
    if isinstance(runs, Mapping):
        raise TypeError("pass a list of runs, e.g. rrf([bm25_run, dense_run]), not a single run")
    if len(runs) == 0:
        raise ValueError("need at least one run to fuse")
    for r, run in enumerate(runs):
        if not isinstance(run, Mapping):
            raise TypeError(f"run {r} must be a dict {{query_id: {{doc_id: score}}}}")


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    w = [float(x) for x in weights]
    if len(w) != n:
        raise ValueError(f"got {len(w)} weights for {n} runs; pass one weight per run")
    return w


def rrf(
    runs: Sequence[Mapping[Hashable, Mapping[Hashable, float]]],
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> Run:
    """Reciprocal-rank fusion of several runs.

    Args:
        runs: runs ``{query_id: {doc_id: score}}``; a query may be missing from some runs.
        k: the RRF constant (60 in the paper); larger flattens the rank discount.
        weights: optional per-run multipliers (default 1 each).

    Returns:
        The fused run: every query of any run, every doc of any run for that query, with
        score ``sum_r w_r / (k + rank_r(doc))``.

    Example:
        >>> rrf([{"q": {"a": 2.0, "b": 1.0}}], k=1)["q"]
        {'a': 0.5, 'b': 0.3333333333333333}
    """
    _check_runs(runs)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    w = _check_weights(weights, len(runs))
    fused: Run = {}
    for weight, run in zip(w, runs, strict=True):
        for qid, docs in run.items():
            out = fused.setdefault(qid, {})
            for rank, doc in enumerate(ranked_docs(docs), start=1):
                out[doc] = out.get(doc, 0.0) + weight / (k + rank)
    return fused


def _normalize(scores: np.ndarray, normalization: str | None) -> np.ndarray:
    if normalization is None:
        return scores
    if normalization == "minmax":
        lo, hi = scores.min(), scores.max()
        # a constant list has no spread: every doc is equally (fully) good
        return np.ones_like(scores) if hi == lo else (scores - lo) / (hi - lo)
    std = scores.std()
    return np.zeros_like(scores) if std == 0 else (scores - scores.mean()) / std


def weighted_fusion(
    runs: Sequence[Mapping[Hashable, Mapping[Hashable, float]]],
    weights: Sequence[float] | None = None,
    normalization: str | None = "minmax",
) -> Run:
    """Weighted sum of per-query normalised scores (CombSUM).

    Args:
        runs: runs ``{query_id: {doc_id: score}}``.
        weights: one weight per run (default: equal weights of 1).
        normalization: per run and query, ``"minmax"`` (to [0, 1]; a constant list becomes
            all 1), ``"zscore"`` (mean 0, std 1; a constant list becomes all 0) or ``None``
            (raw scores: only sensible when the runs share a scale).

    Returns:
        The fused run; a doc missing from a run gets 0 from that run.

    Example:
        >>> weighted_fusion([{"q": {"a": 10.0, "b": 0.0}}, {"q": {"b": 1.0}}], [0.3, 0.7])["q"]
        {'a': 0.3, 'b': 0.7}
    """
    _check_runs(runs)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; use one of {NORMALIZATIONS}")
    w = _check_weights(weights, len(runs))
    fused: Run = {}
    for weight, run in zip(w, runs, strict=True):
        for qid, docs in run.items():
            out = fused.setdefault(qid, {})
            if not docs:
                continue
            ids = list(docs.keys())
            vals = _normalize(np.fromiter(docs.values(), float, len(ids)), normalization)
            for doc, v in zip(ids, vals.tolist(), strict=True):
                out[doc] = out.get(doc, 0.0) + weight * v
    return fused


def with_prior(
    run: Mapping[Hashable, Mapping[Hashable, float]],
    prior: Mapping[Hashable, float],
    weight: float,
) -> Run:
    """Re-rank each query's candidates by ``(1 - weight) x relevance + weight x prior``.

    Both parts are min-max normalised per query (:func:`weighted_fusion`); the prior is a
    query-independent value of each doc (its rating, price fit, popularity, ...). A doc missing
    from ``prior`` gets 0 from it.

    Example:
        >>> with_prior({"q": {"a": 2.0, "b": 1.0}}, {"a": 0.0, "b": 1.0}, 0.6)["q"]
        {'a': 0.4, 'b': 0.6}
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    prior_scores = {q: {d: float(prior.get(d, 0.0)) for d in docs} for q, docs in run.items()}
    return weighted_fusion([run, prior_scores], [1.0 - weight, weight])


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
    s = np.asarray(scores.cpu() if hasattr(scores, "cpu") else scores, dtype=np.float64)
    i = np.asarray(indices.cpu() if hasattr(indices, "cpu") else indices)
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
