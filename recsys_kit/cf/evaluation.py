"""Offline evaluation of a recommender on a time-based (or leave-last-out) split.

Protocol of :func:`evaluate_recommender`:

1. Build the matrix from ``train`` only and fit the model on it.
2. **Relevance** = the test interactions: each test user's "query" is their own id and its
   relevant items are the products they interacted with in test. ``grade="binary"`` (default)
   gives each such product grade 1; ``grade="weight"`` gives the largest event weight among its
   test events (purchase 5 > cart 3 > view 1), so nDCG also rewards putting purchases first.
3. With ``exclude_seen=True`` (default) recommendations skip products the user already had in
   train, and those products are removed from the user's relevant set too (a model cannot be
   asked to find what it is not allowed to show). Users left with nothing relevant are
   skipped, and so are test users absent from train (cold-start users: CF has nothing to go
   on). Both counts are reported.
4. Accuracy metrics come from :func:`recsys_kit.metrics.evaluate` (``hit_rate@k``,
   ``ndcg@k``, ``recall@k``, ...) on the top-``k`` lists; beyond-accuracy metrics from
   :mod:`recsys_kit.metrics`: catalogue coverage, novelty (train popularity = distinct users
   per product) and, when item embeddings are given, intra-list diversity.

Example:
    >>> import pandas as pd
    >>> from recsys_kit.cf.base import PopularityRecommender
    >>> train = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "product_id": [1, 2, 1, 3],
    ...                       "event": "view"})
    >>> test = pd.DataFrame({"user_id": ["b"], "product_id": [2], "event": "view"})
    >>> # b already has product 1; 2 and 3 tie (one user each), the lower column (2) wins
    >>> evaluate_recommender(PopularityRecommender(), train, test, k=1)["hit_rate@1"]
    1.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_kit.cf.base import Recommender, block_rows
from recsys_kit.cf.interactions import build_matrix, event_weights
from recsys_kit.constants import COL_PRODUCT_ID, COL_SPLIT, COL_USER_ID, EVENT_WEIGHTS, SEED
from recsys_kit.datasets.frames import check_columns, sorted_unique
from recsys_kit.datasets.splits import SPLIT_TEST, SPLIT_TRAIN
from recsys_kit.metrics import catalog_coverage, evaluate, intra_list_diversity, novelty
from recsys_kit.runs import to_run

__all__ = ["GRADES", "test_qrels", "sampled_recommend", "evaluate_recommender"]

GRADES = ("binary", "weight")


def test_qrels(
    test: pd.DataFrame,
    grade: str = "binary",
    weights: Mapping[str, float] | None = EVENT_WEIGHTS,
) -> dict[Any, dict[Any, float]]:
    """Relevance judgments from test interactions: ``{user_id: {product_id: grade}}``.

    Args:
        test: the test log.
        grade: ``"binary"`` (1 per product) or ``"weight"`` (strongest event weight).
        weights: event weights for ``grade="weight"``.

    Example:
        >>> t = pd.DataFrame({"user_id": ["u", "u"], "product_id": [1, 1],
        ...                   "event": ["view", "purchase"]})
        >>> test_qrels(t, grade="weight")
        {'u': {1: 5.0}}
    """
    if grade not in GRADES:
        raise ValueError(f"grade must be one of {GRADES}, got {grade!r}")
    check_columns(test, [COL_USER_ID, COL_PRODUCT_ID], "test")
    w = event_weights(test, weights) if grade == "weight" else np.ones(len(test))
    best = (
        pd.DataFrame({"u": test[COL_USER_ID].to_numpy(), "i": test[COL_PRODUCT_ID].to_numpy()})
        .assign(g=w)
        .groupby(["u", "i"], sort=True)["g"]
        .max()
    )
    qrels: dict[Any, dict[Any, float]] = {}
    for (user, item), g in best.items():
        qrels.setdefault(user, {})[item] = float(g)
    return qrels


def _check_split(train: pd.DataFrame, test: pd.DataFrame) -> None:
    """No leakage: train holds no held-out rows of the set being evaluated, and vice versa.

    Train may hold ``"train"`` and ``"validation"`` rows (refit on both before the final
    test); the evaluated set holds ``"test"`` or ``"validation"`` rows, never ``"train"``, and
    never a split that train also has.
    """
    got = {
        name: set(map(str, df[COL_SPLIT].unique())) if COL_SPLIT in df.columns else set()
        for name, df in (("train", train), ("test", test))
    }
    bad_train = got["train"] & ({SPLIT_TEST} | got["test"])
    bad_test = got["test"] & {SPLIT_TRAIN}
    if bad_train or bad_test:
        name, bad = ("train", bad_train) if bad_train else ("test", bad_test)
        raise ValueError(
            f"{name} contains rows with split {sorted(bad)}: the evaluated rows would leak into "
            "training. Pass the parts of recsys_kit.datasets.train_test_split or "
            "leave_last_out separately (split_frames gives train, validation, test)"
        )


def sampled_recommend(
    model: Recommender,
    user_rows: np.ndarray,
    relevant: Sequence[np.ndarray],
    n_negatives: int,
    k: int,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of each user among their relevant items and ``n_negatives`` sampled others.

    The negatives are uniform among the items the user neither has in the training matrix
    nor among ``relevant``. Users are scored in blocks (bounded memory).

    Args:
        model: a fitted recommender.
        user_rows: matrix rows of the users.
        relevant: per user, the columns of their relevant items (``-1`` entries are ignored).
        n_negatives: sampled items per user (>= 1).
        k: list length.
        seed: seeds the sampling.

    Returns:
        ``(scores, items)`` like :meth:`Recommender.recommend`, each (n_users, k); rows with
        fewer than ``k`` candidates are padded with ``-inf`` / column ``-1``.
    """
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, (int, np.integer)):
        raise ValueError(f"n_negatives must be None or an int >= 1, got {n_negatives!r}")
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be None or an int >= 1, got {n_negatives!r}")
    matrix = model._fitted()
    n_items = matrix.shape[1]
    rng = np.random.default_rng(seed)
    width = int(n_negatives) + max((len(r) for r in relevant), default=0)
    cand = np.full((len(user_rows), width), -1, dtype=np.int64)
    for r, (u, rel) in enumerate(zip(user_rows, relevant, strict=True)):
        rel = np.asarray(rel, dtype=np.int64)
        rel = rel[rel >= 0]
        taken = np.union1d(matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]], rel)
        pool = n_items - len(taken)
        draw = rng.choice(pool, size=min(int(n_negatives), pool), replace=False)
        # the draw-th item not taken: shift each draw past the taken columns below it
        neg = draw + np.searchsorted(taken - np.arange(len(taken)), draw, side="right")
        cand[r, : len(rel)] = rel
        cand[r, len(rel) : len(rel) + len(neg)] = neg
    out_s = np.full((len(user_rows), k), -np.inf, dtype=np.float32)
    out_i = np.full((len(user_rows), k), -1, dtype=np.int64)
    step = block_rows(n_items)
    for start in range(0, len(user_rows), step):
        block = slice(start, start + step)
        full = model.score(user_rows[block])
        c = cand[block]
        vals = np.where(c >= 0, np.take_along_axis(full, c.clip(min=0), axis=1), -np.inf)
        # rank by (score desc, column asc) among the candidates, like recommend()
        order = np.lexsort((c, -vals), axis=1)[:, :k]
        out_s[block, : order.shape[1]] = np.take_along_axis(vals, order, axis=1)
        out_i[block, : order.shape[1]] = np.take_along_axis(c, order, axis=1)
    return out_s, np.where(np.isfinite(out_s), out_i, -1)


def evaluate_recommender(
    model: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    k: int = 10,
    metrics: Sequence[str] | None = None,
    *,
    items: Iterable | None = None,
    weights: Mapping[str, float] | None = EVENT_WEIGHTS,
    grade: str = "binary",
    exclude_seen: bool = True,
    item_embeddings: np.ndarray | None = None,
    fit: bool = True,
    n_negatives: int | None = None,
    seed: int = SEED,
) -> dict[str, float]:
    """Fit on ``train``, recommend ``k`` items to each test user, score against ``test``.

    Args:
        model: a recommender (fitted here unless ``fit=False``).
        train, test: the log to fit on and the held-out log to score (``split`` columns
            optional, checked for leakage if present: e.g. train + validation vs test).
        k: list length.
        metrics: names for :func:`recsys_kit.metrics.evaluate`; default
            ``["ndcg@k", "hit_rate@k", "recall@k"]``.
        items: matrix columns, the candidates (e.g. the whole catalogue, so products nobody
            touched can be recommended and coverage is over the catalogue); default: every
            product of ``train`` and ``test`` (all-item ranking: a product bought only in
            the test period is a candidate like any other).
        weights: event weights for the matrix and for ``grade="weight"``.
        grade: ``"binary"`` or ``"weight"`` relevance (module doc).
        exclude_seen: skip train items in the lists and in the relevant sets.
        item_embeddings: (n_items, dim) vectors aligned with the matrix columns, for
            ``diversity@k`` (intra-list cosine distance); omitted when None.
        fit: False evaluates ``model`` as fitted (it must have been fitted on
            ``build_matrix(train, weights, items=items)``; the shape is checked).
        n_negatives: ``None`` (default) ranks **all** candidate items. An int ranks each
            user's relevant items among only ``n_negatives`` random items the user never
            touched (the "sampled metrics" of many papers, e.g. 99 in S3-Rec's main table):
            a far easier task, so the numbers are far higher and not comparable with
            all-item ones (Krichene & Rendle, KDD 2020). Coverage then counts the sampled lists.
        seed: seeds the sampled negatives.

    Returns:
        ``{metric: value}`` with the accuracy metrics, ``coverage@k``, ``novelty@k``,
        ``diversity@k`` (with embeddings), ``n_users`` (evaluated), ``n_cold_users`` (test
        users not in train) and ``n_users_no_new_items`` (skipped: nothing new to find).
    """

    if not isinstance(model, Recommender):
        raise TypeError(f"model must be a recsys_kit.cf Recommender, got {type(model).__name__}")
    check_columns(test, [COL_USER_ID, COL_PRODUCT_ID], "test")
    _check_split(train, test)
    if metrics is None:
        metrics = [f"ndcg@{k}", f"hit_rate@{k}", f"recall@{k}"]
    if items is None:  # every product of the log is a candidate, also those only in test
        items = sorted_unique(pd.concat([train[COL_PRODUCT_ID], test[COL_PRODUCT_ID]]))
    matrix, user_index, item_index = build_matrix(train, weights, items=items, split=None)
    if fit:
        model.fit(matrix)
    elif model.train_matrix is None or model.train_matrix.shape != matrix.shape:
        raise ValueError(
            f"fit=False: the model must already be fitted on a matrix of shape {matrix.shape} "
            "(build_matrix(train, weights, items=items)); or pass fit=True"
        )

    test, n_cold, n_empty = _predictable(test, matrix, user_index, item_index, exclude_seen)
    qrels = test_qrels(test, grade, weights)
    users = list(qrels)
    rows = user_index.get_indexer(users)
    if n_negatives is None:
        scores, cols = model.recommend(rows, k, exclude_seen=exclude_seen)
    else:
        relevant = [item_index.get_indexer(list(qrels[u])) for u in users]
        scores, cols = sampled_recommend(model, rows, relevant, n_negatives, k, seed)
    # Rank-based run scores (k, k-1, ...) so the metrics see exactly this order; padded
    # (-inf) entries are dropped.
    ranks = np.broadcast_to(np.arange(k, 0, -1, dtype=np.float64), scores.shape)
    run = to_run(users, ranks, np.where(np.isfinite(scores), cols, -1), list(item_index))
    out = dict(evaluate(qrels, run, list(metrics)))

    out.update(_beyond_accuracy(cols, scores, matrix, k, item_embeddings))
    out["n_users"] = float(len(users))
    out["n_cold_users"] = float(n_cold)
    out["n_users_no_new_items"] = float(n_empty)
    return out


def _predictable(
    test: pd.DataFrame,
    matrix: sp.csr_matrix,
    user_index: pd.Index,
    item_index: pd.Index,
    exclude_seen: bool,
) -> tuple[pd.DataFrame, int, int]:
    """The test rows a model can be asked about: warm users, and (``exclude_seen``) pairs not
    already in train; with the number of cold users and of users left with nothing new."""
    test = test[[COL_USER_ID, COL_PRODUCT_ID] + (["event"] if "event" in test.columns else [])]
    warm_user = user_index.get_indexer(test[COL_USER_ID]) >= 0
    n_cold = int(test.loc[~warm_user, COL_USER_ID].nunique())
    test = test[warm_user]
    if exclude_seen:
        # Drop (user, item) pairs already in train: they are never recommended.
        rows = user_index.get_indexer(test[COL_USER_ID])
        cols = item_index.get_indexer(test[COL_PRODUCT_ID])
        seen = np.zeros(len(test), dtype=bool)
        known = cols >= 0
        seen[known] = np.asarray(matrix[rows[known], cols[known]]).ravel() > 0
        n_before = test[COL_USER_ID].nunique()
        test = test[~seen]
        n_empty = int(n_before - test[COL_USER_ID].nunique())
    else:
        n_empty = 0
    if len(test) == 0:
        raise ValueError(
            "no test user has an interaction to predict (all test users are new, or every test "
            "item was already seen in train); check the split"
        )
    return test, n_cold, n_empty


def _beyond_accuracy(
    cols: np.ndarray,
    scores: np.ndarray,
    matrix: sp.csr_matrix,
    k: int,
    item_embeddings: np.ndarray | None,
) -> dict[str, float]:
    """Coverage, novelty and (with embeddings) diversity of the recommended lists."""
    out: dict[str, float] = {}
    lists = [row[np.isfinite(s)].tolist() for row, s in zip(cols, scores, strict=True)]
    out[f"coverage@{k}"] = catalog_coverage(lists, matrix.shape[1])
    popularity = np.bincount(matrix.indices, minlength=matrix.shape[1])
    out[f"novelty@{k}"] = novelty(lists, dict(enumerate(popularity.tolist())), matrix.shape[0])
    if item_embeddings is not None:
        emb = np.asarray(item_embeddings)
        if emb.ndim != 2 or len(emb) != matrix.shape[1]:
            raise ValueError(
                f"item_embeddings must be (n_items={matrix.shape[1]}, dim) aligned with the "
                f"matrix columns, got shape {emb.shape}"
            )
        out[f"diversity@{k}"] = intra_list_diversity(lists, emb)
    return out
