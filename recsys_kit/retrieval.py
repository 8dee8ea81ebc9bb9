"""First-stage retrieval as runs: BM25 and dense top-k over a set of products.

The notebooks' first stage, once: :func:`bm25_run` (lexical, with zero-score "matches", the
products that share no query term, dropped), :func:`dense_run` (exact top-k of embeddings),
and :func:`runs_by_target` for MiniShop's protocol, where each query searches the titles of
its ``target`` language (a cross-lingual query searches the other language's titles).

Example:
    >>> run = bm25_run(["q", "r"], ["red dress", "hat"], ["red dress", "blue jeans"], ["a", "b"])
    >>> {q: list(docs) for q, docs in run.items()}  # "b" shares no word with "red dress"
    {'q': ['a'], 'r': []}
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from recsys_kit import constants as C
from recsys_kit.constants import DEFAULT_K
from recsys_kit.lexical import BM25Index
from recsys_kit.ranking import topk
from recsys_kit.runs import Run, drop_zero_scores, to_run

__all__ = ["bm25_run", "dense_run", "runs_by_target"]


def bm25_run(
    query_ids: Sequence[Hashable],
    query_texts: Sequence[str],
    doc_texts: Sequence[str],
    doc_ids: Sequence[Hashable],
    k: int = DEFAULT_K,
) -> Run:
    """BM25 over ``doc_texts``: the top ``k`` per query, zero-score docs dropped.

    Args:
        query_ids, query_texts: the queries, aligned.
        doc_texts, doc_ids: the documents, aligned.
        k: results kept per query (at most the number of documents).

    Returns:
        ``{query_id: {doc_id: bm25 score}}``; a query sharing no term with any document maps
        to ``{}`` (a zero-result search, kept so evaluation counts it).

    Example:
        >>> list(bm25_run(["q"], ["red dress"], ["red dress", "blue jeans"], ["a", "b"])["q"])
        ['a']
    """
    if len(query_ids) != len(query_texts):
        raise ValueError(f"got {len(query_ids)} query ids for {len(query_texts)} query texts")
    scores, idx = BM25Index(doc_texts, doc_ids).search(list(query_texts), k=min(k, len(doc_ids)))
    return drop_zero_scores(to_run(query_ids, scores, idx, doc_ids))


def dense_run(
    query_ids: Sequence[Hashable],
    query_vecs: np.ndarray,
    doc_vecs: np.ndarray,
    doc_ids: Sequence[Hashable],
    k: int = DEFAULT_K,
    metric: str = "dot",
    device: str | torch.device | None = None,
) -> Run:
    """Exact dense top-k (:func:`recsys_kit.ranking.topk`) as a run.

    Args:
        query_ids: one id per row of ``query_vecs``.
        query_vecs, doc_vecs: (n, dim) embeddings of one model.
        doc_ids: one id per row of ``doc_vecs``.
        k: results per query (at most the number of documents).
        metric, device: passed to :func:`~recsys_kit.ranking.topk` (``"dot"`` on the unit
            vectors of the course's encoders ranks like cosine).

    Returns:
        ``{query_id: {doc_id: score}}``.

    Example:
        >>> dense_run(["q"], np.eye(2)[:1], np.eye(2), ["a", "b"], k=1, device="cpu")
        {'q': {'a': 1.0}}
    """
    scores, idx = topk(query_vecs, doc_vecs, k=min(k, len(doc_ids)), metric=metric, device=device)
    return to_run(query_ids, scores, idx, doc_ids)


def runs_by_target(
    queries: pd.DataFrame,
    query_vecs: np.ndarray,
    doc_texts: Mapping[str, Sequence[str]],
    doc_vecs: Mapping[str, np.ndarray],
    doc_ids: Sequence[Hashable],
    k: int = DEFAULT_K,
    device: str | torch.device | None = None,
) -> tuple[Run, Run]:
    """BM25 and dense runs where each query searches its ``target`` language's documents.

    Args:
        queries: ``query_id``, ``query`` and ``target`` (a language code of ``doc_texts``),
            e.g. :func:`recsys_kit.datasets.minishop_sample`'s queries; row i <->
            ``query_vecs[i]``.
        query_vecs: (n_queries, dim) query embeddings.
        doc_texts: language -> one text per document (e.g. ``{"en": titles, "zh": titles}``).
        doc_vecs: language -> (n_docs, dim) embeddings of those texts.
        doc_ids: the documents' ids, the same order in every language.
        k: results per query.
        device: for the dense top-k.

    Returns:
        ``(bm25_run, dense_run)``, each with every query of ``queries``.

    Example:
        >>> q = pd.DataFrame({"query_id": ["q"], "query": ["dress"], "target": ["en"]})
        >>> bm, dn = runs_by_target(q, np.eye(2)[:1], {"en": ["dress", "shoe"]},
        ...                         {"en": np.eye(2)}, ["a", "b"], k=1, device="cpu")
        >>> list(bm["q"]), list(dn["q"])
        (['a'], ['a'])
    """
    missing = [c for c in (C.COL_QUERY_ID, C.COL_QUERY, "target") if c not in queries]
    if missing:
        raise KeyError(f"queries lack column(s) {missing}; see datasets.minishop_sample")
    if len(query_vecs) != len(queries):
        raise ValueError(f"got {len(query_vecs)} query vectors for {len(queries)} queries")
    unknown = sorted(set(queries["target"]) - set(doc_texts) - set(doc_vecs))
    if unknown or set(doc_texts) != set(doc_vecs):
        raise KeyError(f"need texts and vectors of every target language; missing {unknown}")
    lexical: Run = {}
    semantic: Run = {}
    for lang in doc_texts:
        rows = (queries["target"] == lang).to_numpy()
        if not rows.any():
            continue
        qids = queries.loc[rows, C.COL_QUERY_ID].tolist()
        texts = queries.loc[rows, C.COL_QUERY].tolist()
        lexical.update(bm25_run(qids, texts, doc_texts[lang], doc_ids, k))
        semantic.update(
            dense_run(qids, query_vecs[rows], doc_vecs[lang], doc_ids, k, device=device)
        )
    return lexical, semantic
