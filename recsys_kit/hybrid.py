"""Hybrid retrieval: fuse lexical and dense result lists.

Runs use the TREC/ranx dict format ``{query_id: {doc_id: score}}`` (larger = better), the same
format :func:`recsys_kit.metrics.evaluate` takes, so fused runs are evaluated directly.

* :func:`rrf` -- reciprocal-rank fusion (Cormack et al., 2009): ``sum_r w_r / (k + rank_r(d))``
  with 1-based ranks; ignores score scales, which is why it is the robust default.
* :func:`weighted_fusion` -- normalise each run's scores per query, then a weighted sum
  (CombSUM). A document missing from a run contributes 0 from that run.
* :func:`with_prior` -- re-rank candidates by relevance mixed with a query-independent prior.

The run type, its builders (``to_run``) and the one tie rule (``ranked_docs``: score
descending, ties by doc id ascending) live in :mod:`recsys_kit.runs`; they are re-exported here
because Module 2's notebooks import them from ``hybrid``.

Example:
    >>> bm25 = {"q1": {"a": 12.0, "b": 3.0}}
    >>> dense = {"q1": {"b": 0.9, "c": 0.8}}
    >>> sorted(rrf([bm25, dense], k=60)["q1"].items(), key=lambda kv: -kv[1])[0][0]
    'b'
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from recsys_kit.runs import Run, ranked_docs, to_run

__all__ = ["NORMALIZATIONS", "Run", "ranked_docs", "rrf", "to_run", "weighted_fusion", "with_prior"]

NORMALIZATIONS = ("minmax", "zscore", None)


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
