"""Offline evaluation: ranking metrics for search and beyond-accuracy metrics for recommendation.

:func:`evaluate` takes qrels ``{query_id: {doc_id: grade}}`` and a run
``{query_id: {doc_id: score}}`` (the ranx / pytrec_eval dict format) and metric names in ranx
style. It builds flat numpy arrays in one Python pass, then every metric is a vectorised kernel
(``bincount`` over the flat arrays); small API on top, vectorised kernels underneath.

Definitions (checked against pytrec_eval and ranx in ``tests/test_metrics.py``):

* **Relevant**: ``grade >= rel_threshold`` (default 1, i.e. ``grade > 0`` for integer grades such
  as ESCI's 3/2/1/0). ``R`` = number of relevant judged docs of the query.
* **Ranking of a run**: score descending, **ties by doc id ascending**
  (:func:`recsys_kit.runs.ranked_docs`, the kit's one tie rule). A deterministic order is
  needed for reproducible numbers; ascending id matches :func:`recsys_kit.ranking.topk`'s
  "lower index wins". (trec_eval breaks ties by doc id *descending*; ranx leaves them
  unspecified, so comparisons use scores that are distinct, in float32 for trec_eval.)
* **Cut-off @k**: only ranks 1..k count; a run shorter than k is *not* padded with relevant
  docs, and ``precision@k`` still divides by k (trec_eval's ``P_k``, ranx).
  Without ``@k`` the whole run is used and ``precision`` divides by the run length.
* ``precision@k = hits@k / k``; ``recall@k = hits@k / R``; ``f1@k`` their harmonic mean;
  ``hit_rate@k`` (alias ``hit@k``) = 1 if any relevant doc in the top k.
* ``mrr@k`` = 1 / rank of the first relevant doc within the top k, else 0.
* ``map@k`` = sum over relevant ranks r <= k of precision@r, divided by R (trec_eval's
  ``map_cut_k``, ranx's ``map@k``).
* ``ndcg@k``: **linear gain** (gain = grade of a relevant doc, 0 otherwise; Jarvelin &
  Kekalainen, ranx's ``ndcg``, trec_eval's ``ndcg_cut``) and discount ``log2(rank + 1)``;
  the ideal DCG ranks **all judged relevant docs of the query** by grade, cut at k.
* A query in the qrels but **absent from the run scores 0** on every metric; a query with no
  relevant judged doc (R = 0) scores 0; queries in the run but not in the qrels are ignored.
  The mean is over the qrels' queries.

Recommendation metrics: :func:`catalog_coverage`, :func:`intra_list_diversity` and
:func:`novelty`.

Example:
    >>> qrels = {"q1": {"a": 3, "b": 1}, "q2": {"c": 2}}
    >>> run = {"q1": {"a": 0.9, "x": 0.5, "b": 0.1}, "q2": {"x": 0.3}}
    >>> evaluate(qrels, run, ["precision@2", "recall@3", "mrr"])
    {'precision@2': 0.25, 'recall@3': 0.5, 'mrr': 0.5}
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_kit.constants import DEFAULT_K
from recsys_kit.runs import ranked_docs

__all__ = [
    "METRIC_NAMES",
    "parse_metric",
    "evaluate",
    "catalog_coverage",
    "intra_list_diversity",
    "novelty",
]

#: Base metric names understood by :func:`evaluate` (append ``@k`` for a cut-off).
METRIC_NAMES = ("precision", "recall", "f1", "hit_rate", "mrr", "map", "ndcg")
_ALIASES = {"hit": "hit_rate", "hits_rate": "hit_rate", "p": "precision", "r": "recall"}
_METRIC_RE = re.compile(r"^([a-z][a-z0-9_]*)(?:@(\d+))?$")


@dataclass(frozen=True)
class _Flat:
    """Run and qrels of all evaluated queries as flat arrays (one entry per ranked doc)."""

    qidx: np.ndarray  # query row of each retrieved doc
    pos: np.ndarray  # 1-based rank within its query
    gain: np.ndarray  # grade of the doc if relevant, else 0 (rel_threshold > 0)
    rel: np.ndarray  # 1.0 if relevant (gain > 0) else 0.0
    n_retrieved: np.ndarray  # run length per query (after the depth cut)
    n_rel: np.ndarray  # R per query
    ideal_qidx: np.ndarray  # relevant judged docs, sorted by grade desc within each query
    ideal_pos: np.ndarray
    ideal_gain: np.ndarray


def parse_metric(name: str) -> tuple[str, int | None]:
    """Split ``"ndcg@10"`` into ``("ndcg", 10)``; ``"mrr"`` into ``("mrr", None)``.

    Raises:
        ValueError: unknown name or k <= 0, listing the valid names.
    """
    m = _METRIC_RE.match(name.strip().lower()) if isinstance(name, str) else None
    base = _ALIASES.get(m.group(1), m.group(1)) if m else None
    if m is None or base not in METRIC_NAMES:
        raise ValueError(
            f"unknown metric {name!r}; use one of {METRIC_NAMES} (aliases {sorted(_ALIASES)}), "
            "optionally with a cut-off such as 'ndcg@10'"
        )
    k = int(m.group(2)) if m.group(2) is not None else None
    if k is not None and k <= 0:
        raise ValueError(f"cut-off must be >= 1 in {name!r}")
    return base, k


def _flatten(
    qrels: Mapping[Hashable, Mapping[Hashable, float]],
    run: Mapping[Hashable, Mapping[Hashable, float]],
    depth: int | None,
    rel_threshold: float,
) -> _Flat:
    gains: list[float] = []
    counts: list[int] = []
    ideal: list[float] = []
    ideal_counts: list[int] = []
    for qid, judged in qrels.items():
        relevant = {d: g for d, g in judged.items() if g >= rel_threshold}
        docs = run.get(qid)
        if docs:
            ids = ranked_docs(docs)
            if depth is not None:
                ids = ids[:depth]
            get = relevant.get
            gains.extend([get(d, 0.0) for d in ids])
            counts.append(len(ids))
        else:
            counts.append(0)
        ideal.extend(sorted(relevant.values(), reverse=True))
        ideal_counts.append(len(relevant))
    n_q = len(counts)
    n_retrieved = np.asarray(counts, dtype=np.int64)
    n_rel = np.asarray(ideal_counts, dtype=np.int64)
    gain = np.asarray(gains, dtype=np.float64)
    qidx = np.repeat(np.arange(n_q), n_retrieved)
    starts = np.cumsum(n_retrieved) - n_retrieved
    pos = np.arange(gain.size) - np.repeat(starts, n_retrieved) + 1
    ideal_qidx = np.repeat(np.arange(n_q), n_rel)
    istarts = np.cumsum(n_rel) - n_rel
    ideal_gain = np.asarray(ideal, dtype=np.float64)
    ideal_pos = np.arange(ideal_gain.size) - np.repeat(istarts, n_rel) + 1
    return _Flat(qidx, pos, gain, (gain > 0).astype(np.float64), n_retrieved, n_rel,
                 ideal_qidx, ideal_pos, ideal_gain)  # fmt: skip


# --------------------------------------------------------------------------------------------
# vectorised kernels: each returns one value per query
# --------------------------------------------------------------------------------------------
def _sum_at(f: _Flat, weights: np.ndarray, k: int | None) -> np.ndarray:
    n_q = f.n_rel.size
    if k is not None:
        weights = weights * (f.pos <= k)
    return np.bincount(f.qidx, weights=weights, minlength=n_q)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a, dtype=np.float64)
    np.divide(a, b, out=out, where=b > 0)
    return out


def _precision(f: _Flat, k: int | None) -> np.ndarray:
    denom = np.full(f.n_rel.size, float(k)) if k is not None else f.n_retrieved
    return _safe_div(_sum_at(f, f.rel, k), denom)


def _recall(f: _Flat, k: int | None) -> np.ndarray:
    return _safe_div(_sum_at(f, f.rel, k), f.n_rel)


def _f1(f: _Flat, k: int | None) -> np.ndarray:
    p, r = _precision(f, k), _recall(f, k)
    return _safe_div(2 * p * r, p + r)


def _hit_rate(f: _Flat, k: int | None) -> np.ndarray:
    return (_sum_at(f, f.rel, k) > 0).astype(np.float64)


def _mrr(f: _Flat, k: int | None) -> np.ndarray:
    out = np.zeros(f.n_rel.size)
    hit = f.rel > 0
    if k is not None:
        hit &= f.pos <= k
    q, first = np.unique(f.qidx[hit], return_index=True)  # first hit = best rank (rows ordered)
    out[q] = 1.0 / f.pos[hit][first]
    return out


def _map(f: _Flat, k: int | None) -> np.ndarray:
    # hits up to and including each position, within its query
    csum = np.cumsum(f.rel)
    starts = np.cumsum(f.n_retrieved) - f.n_retrieved
    before = np.repeat(np.concatenate([[0.0], csum])[starts], f.n_retrieved)
    prec_at = (csum - before) / f.pos
    return _safe_div(_sum_at(f, f.rel * prec_at, k), f.n_rel)


def _ndcg(f: _Flat, k: int | None) -> np.ndarray:
    dcg = _sum_at(f, f.gain / np.log2(f.pos + 1.0), k)
    w = f.ideal_gain / np.log2(f.ideal_pos + 1.0)
    if k is not None:
        w = w * (f.ideal_pos <= k)
    idcg = np.bincount(f.ideal_qidx, weights=w, minlength=f.n_rel.size)
    return _safe_div(dcg, idcg)


_KERNELS = {
    "precision": _precision,
    "recall": _recall,
    "f1": _f1,
    "hit_rate": _hit_rate,
    "mrr": _mrr,
    "map": _map,
    "ndcg": _ndcg,
}


def evaluate(
    qrels: Mapping[Hashable, Mapping[Hashable, float]],
    run: Mapping[Hashable, Mapping[Hashable, float]],
    metrics: str | Sequence[str] = (f"ndcg@{DEFAULT_K}",),
    per_query: bool = False,
    rel_threshold: float = 1,
) -> dict[str, float] | dict[str, dict[Hashable, float]]:
    """Ranking metrics of a run against graded relevance judgments (definitions: module doc).

    Args:
        qrels: ``{query_id: {doc_id: grade}}``; grades >= ``rel_threshold`` are relevant.
        run: ``{query_id: {doc_id: score}}``, larger score = ranked higher.
        metrics: names such as ``"ndcg@10"``, ``"map"``, ``"mrr@10"``, ``"recall@100"``,
            ``"precision@5"``, ``"f1@10"``, ``"hit_rate@10"`` (``"hit@10"``).
        per_query: return ``{metric: {query_id: value}}`` instead of means.
        rel_threshold: minimum grade of a relevant doc (default 1).

    Returns:
        ``{metric: mean over the qrels' queries}`` (or per query values); a single metric
        name still gives a dict.

    Example:
        >>> r = evaluate({"q": {"a": 2, "b": 1}}, {"q": {"b": 2.0, "a": 1.0}}, "ndcg@2")
        >>> round(r["ndcg@2"], 4)  # (1 + 2 / log2(3)) / (2 + 1 / log2(3))
        0.8597
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(qrels, Mapping) or not isinstance(run, Mapping):
        raise TypeError("qrels and run must be dicts {query_id: {doc_id: grade_or_score}}")
    if len(metrics) == 0:
        raise ValueError("pass at least one metric name, e.g. ['ndcg@10', 'mrr']")
    parsed = [parse_metric(m) for m in metrics]
    if not rel_threshold > 0:
        raise ValueError(
            f"rel_threshold must be > 0 (a grade of 0 is never relevant), got {rel_threshold}"
        )
    if len(qrels) == 0:
        raise ValueError("qrels is empty: there is no query to evaluate")
    cutoffs = [k for _, k in parsed]
    depth = None if any(k is None for k in cutoffs) else max(cutoffs)  # type: ignore[type-var]
    flat = _flatten(qrels, run, depth, rel_threshold)
    out: dict[str, Any] = {}
    qids = list(qrels.keys())
    for name, (base, k) in zip(metrics, parsed, strict=True):
        values = _KERNELS[base](flat, k)
        out[name] = (
            dict(zip(qids, values.tolist(), strict=True)) if per_query else float(values.mean())
        )
    return out


# --------------------------------------------------------------------------------------------
# recommendation (beyond-accuracy) metrics
# --------------------------------------------------------------------------------------------
def _lists(recommendations: Mapping[Hashable, Sequence[Any]] | Sequence[Sequence[Any]]) -> list:
    lists = (
        list(recommendations.values())
        if isinstance(recommendations, Mapping)
        else list(recommendations)
    )
    if not lists:
        raise ValueError("recommendations is empty; pass one list of item ids per user")
    return [list(x) for x in lists]


def catalog_coverage(
    recommendations: Mapping[Hashable, Sequence[Any]] | Sequence[Sequence[Any]],
    catalog_size: int,
) -> float:
    """Share of the catalogue that appears in at least one recommendation list.

    Args:
        recommendations: ``{user_id: [item ids]}`` or a list of lists.
        catalog_size: number of items that could be recommended.

    Returns:
        ``|distinct recommended items| / catalog_size`` in [0, 1].

    Example:
        >>> catalog_coverage([[1, 2], [2, 3]], catalog_size=10)
        0.3
    """
    if catalog_size <= 0:
        raise ValueError(f"catalog_size must be >= 1, got {catalog_size}")
    distinct = {i for lst in _lists(recommendations) for i in lst}
    if len(distinct) > catalog_size:
        raise ValueError(
            f"{len(distinct)} distinct recommended items exceed catalog_size={catalog_size}"
        )
    return len(distinct) / catalog_size


def intra_list_diversity(
    recommendations: Mapping[Hashable, Sequence[Any]] | Sequence[Sequence[Any]],
    item_embeddings: np.ndarray | Mapping[Hashable, np.ndarray],
) -> float:
    """Mean pairwise cosine distance ``1 - cos`` within each list, averaged over lists.

    Args:
        recommendations: ``{user_id: [item ids]}`` or a list of lists.
        item_embeddings: (n_items, dim) array indexed by integer item ids, or
            ``{item_id: vector}``.

    Returns:
        The mean over lists with at least 2 items (lists shorter than 2 have no pair).

    Example:
        >>> emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        >>> intra_list_diversity([[0, 1], [0, 2]], emb)
        0.5
    """
    values = []
    for lst in _lists(recommendations):
        if len(lst) < 2:
            continue
        if isinstance(item_embeddings, Mapping):
            try:
                e = np.stack([np.asarray(item_embeddings[i], dtype=np.float64) for i in lst])
            except KeyError as err:
                raise KeyError(f"item {err.args[0]!r} has no embedding") from None
        else:
            e = np.asarray(item_embeddings, dtype=np.float64)[np.asarray(lst, dtype=np.int64)]
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        g = e @ e.T
        n = len(lst)
        values.append((n * n - g.sum() - (n - np.trace(g))) / (n * (n - 1)))
    if not values:
        raise ValueError("no recommendation list has 2 or more items; diversity is undefined")
    return float(np.mean(values))


def novelty(
    recommendations: Mapping[Hashable, Sequence[Any]] | Sequence[Sequence[Any]],
    item_popularity: Mapping[Hashable, float],
    n_users: int | None = None,
) -> float:
    """Mean self-information ``-log2 p(item)`` of recommended items (Zhou et al., 2010).

    Args:
        recommendations: ``{user_id: [item ids]}`` or a list of lists.
        item_popularity: ``{item_id: interaction count}`` in the training data.
        n_users: if given, ``p(i) = count_i / n_users`` (share of users who interacted);
            otherwise ``p(i) = count_i / sum of counts``. Items missing or with a count
            below 1 are given count 1 (so a never-seen item is very novel, but finite).

    Returns:
        Mean over lists of the mean self-information in the list (bits).

    Example:
        >>> novelty([["a", "b"]], {"a": 50, "b": 25}, n_users=100)
        1.5
    """
    total = float(n_users) if n_users is not None else float(sum(item_popularity.values()))
    if total <= 0:
        raise ValueError("item_popularity counts (or n_users) must be positive")
    per_list = []
    for lst in _lists(recommendations):
        if not lst:
            continue
        counts = np.array([max(float(item_popularity.get(i, 0.0)), 1.0) for i in lst])
        per_list.append(float(np.mean(-np.log2(np.minimum(counts / total, 1.0)))))
    if not per_list:
        raise ValueError("all recommendation lists are empty")
    return float(np.mean(per_list))
