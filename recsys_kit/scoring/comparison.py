"""Comparisons of scorers on the same candidate pairs, and the relevance/purchase trade-off.

Example:
    >>> pairs = pd.DataFrame({"query_id": ["q", "q"], "product_id": ["a", "b"]})
    >>> compare_scorers(pairs, {"s": [1.0, 0.0]}, {"q": {"a": 1}}, metrics=["mrr@1"])
       mrr@1
    s    1.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from recsys_kit import constants as C
from recsys_kit.metrics import evaluate
from recsys_kit.runs import scores_to_run
from recsys_kit.scoring.features import FEATURES
from recsys_kit.scoring.multitask import MultiTaskRanker

__all__ = ["DEFAULT_METRICS", "compare_scorers", "tradeoff_curve"]


DEFAULT_METRICS = ("ndcg@10", "recall@10", "mrr@10")


def _restrict(qrels: Mapping, query_ids: Iterable[str] | None) -> dict:
    if query_ids is None:
        return dict(qrels)
    keep = {str(q) for q in query_ids}
    out = {q: d for q, d in qrels.items() if str(q) in keep}
    if not out:
        raise ValueError("none of the query_ids is in the qrels; check the ids and the split")
    return out


def compare_scorers(
    pairs: pd.DataFrame,
    scorers: Mapping[str, Sequence[float] | np.ndarray],
    qrels: Mapping[str, Mapping[str, int]],
    query_ids: Iterable[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> pd.DataFrame:
    """Evaluate several scorings of the same pairs with :func:`recsys_kit.metrics.evaluate`.

    Args:
        pairs: candidate pairs (``query_id``, ``product_id``).
        scorers: name -> one score per pair, e.g.
            ``{"semantic": -feats["distance"], "learned": ranker.score(feats)}``.
        qrels: ``{query_id: {product_id: grade}}`` (e.g. ``datasets.qrels_dict``).
        query_ids: evaluate on these queries only (the held-out ones); None = all qrels queries.
        metrics: metric names.

    Returns:
        Frame indexed by scorer name, one column per metric.
    """
    qr = _restrict(qrels, query_ids)
    rows = {
        name: evaluate(qr, scores_to_run(pairs, s), list(metrics)) for name, s in scorers.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def tradeoff_curve(
    table: pd.DataFrame,
    alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    *,
    train_queries: Iterable[str],
    test_queries: Iterable[str],
    buy_qrels: Mapping[str, Mapping[str, int]],
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    buy_col: str = "buy_rate",
    grade_col: str = C.COL_GRADE,
    feature_names: Sequence[str] = FEATURES,
    k: int = 10,
    epochs: int = 300,
    lr: float = 0.01,
    hidden: int = 16,
    seed: int = C.SEED,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Relevance vs purchase trade-off of :class:`MultiTaskRanker` as ``alpha`` varies.

    For each alpha, train on the train queries' pairs, rank the test queries' pairs by
    :meth:`MultiTaskRanker.score` (mix = alpha) and measure relevance nDCG@k (against
    ``qrels``) and purchase nDCG@k (against ``buy_qrels``, e.g. :func:`purchase_qrels` on the
    test split of the log).

    Args:
        table: pairs with ``query_id``, ``product_id``, the features, ``grade_col``, ``buy_col``.
        alphas: relevance-loss weights to try.
        train_queries, test_queries: from :func:`train_test_queries`.
        buy_qrels: ``{query_id: {product_id: 1}}`` of purchases.
        qrels: graded relevance (default: the table's grades).
        buy_col, grade_col, feature_names: column names in ``table``.
        k: metric cut-off.
        epochs, lr, hidden, seed, device: training settings (same seed for every alpha).

    Returns:
        Frame with columns ``alpha``, ``ndcg@k``, ``purchase_ndcg@k`` (one row per alpha).
    """
    train, test = _split_table(table, train_queries, test_queries, grade_col, buy_col,
                               feature_names)  # fmt: skip
    rel_qrels, buy_q = _test_qrels(test, qrels, buy_qrels, grade_col)
    metric = f"ndcg@{k}"
    rows = []
    for alpha in alphas:
        model = MultiTaskRanker(len(feature_names), hidden=hidden, seed=seed)
        model.fit(
            train[list(feature_names)].to_numpy(),
            train[grade_col].to_numpy(),
            train[buy_col].to_numpy(),
            alpha=alpha,
            epochs=epochs,
            lr=lr,
            device=device,
        )
        s = model.score(test[list(feature_names)].to_numpy(), test[C.COL_QUERY_ID], mix=alpha)
        run = scores_to_run(test, s)
        rows.append(
            {
                "alpha": float(alpha),
                metric: evaluate(rel_qrels, run, metric)[metric],
                f"purchase_{metric}": evaluate(buy_q, run, metric)[metric],
            }
        )
    return pd.DataFrame(rows)


def _split_table(
    table: pd.DataFrame,
    train_queries: Iterable[str],
    test_queries: Iterable[str],
    grade_col: str,
    buy_col: str,
    feature_names: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train and test queries' pairs of ``table`` (checked to have the needed columns)."""
    need = [C.COL_QUERY_ID, C.COL_PRODUCT_ID, grade_col, buy_col, *feature_names]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise KeyError(f"table lacks column(s) {missing}; see the tradeoff_curve docstring")
    qid = table[C.COL_QUERY_ID].astype(str)
    train = table[qid.isin({str(q) for q in train_queries})]
    test = table[qid.isin({str(q) for q in test_queries})].reset_index(drop=True)
    if train.empty or test.empty:
        raise ValueError("no pair belongs to the train (or test) queries; check the query ids")
    return train, test


def _test_qrels(
    test: pd.DataFrame,
    qrels: Mapping[str, Mapping[str, int]] | None,
    buy_qrels: Mapping[str, Mapping[str, int]],
    grade_col: str,
) -> tuple[dict, dict]:
    """Relevance (default: the table's grades) and purchase qrels of the test queries."""
    if qrels is None:
        rel = test[test[grade_col] > 0]
        qrels = {}
        for q, p, g in zip(rel[C.COL_QUERY_ID].astype(str), rel[C.COL_PRODUCT_ID], rel[grade_col]):
            qrels.setdefault(q, {})[str(p)] = int(g)
    test_ids = set(test[C.COL_QUERY_ID].astype(str))
    rel_qrels = _restrict(qrels, test_ids)
    buy_q = {q: d for q, d in buy_qrels.items() if str(q) in test_ids}
    if not buy_q:
        raise ValueError("buy_qrels has no test query; build it from the test pairs")
    return rel_qrels, buy_q
