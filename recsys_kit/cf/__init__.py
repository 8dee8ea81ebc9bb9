"""Collaborative filtering and user profiles (course Module 7).

One module per concept:

* :mod:`~recsys_kit.cf.interactions` -- interaction log -> sparse user x item confidence
  matrix (:func:`build_matrix`), :func:`leave_last_out` (train / validation / test),
  :func:`split_frames`.
* :mod:`~recsys_kit.cf.base` -- the :class:`Recommender` contract and
  :class:`PopularityRecommender`.
* :mod:`~recsys_kit.cf.item_knn` -- :class:`ItemKNN`, item-item cosine neighbours.
* :mod:`~recsys_kit.cf.mf` -- :class:`ALS` (conjugate gradient on torch sparse kernels, and
  the exact numpy reference), :class:`BPR` (torch, or compiled per-sample SGD),
  :class:`ImplicitALS` (adapter over the ``implicit`` library).
* :mod:`~recsys_kit.cf.bpr_sgd` -- BPR's per-sample SGD loop compiled with numba (optional).
* :mod:`~recsys_kit.cf.profiles` -- behaviour, preference and text profiles.
* :mod:`~recsys_kit.cf.hybrid` -- :class:`HybridRecommender` (CF + content, cold start) and
  :func:`personalised_rerank` for search.
* :mod:`~recsys_kit.cf.evaluation` -- :func:`evaluate_recommender`.
* :mod:`~recsys_kit.cf.sequences` -- :func:`load_amazon_sequences` (Amazon 5-core files).

Models take matrix rows/columns; ``build_matrix`` returns the ids that go with them.

Example:
    >>> from recsys_kit.datasets import load_interactions, train_test_split   # doctest: +SKIP
    >>> train, test = train_test_split(load_interactions())                  # doctest: +SKIP
    >>> X, users, items = build_matrix(train)                                # doctest: +SKIP
    >>> scores, cols = ALS(factors=32).fit(X).recommend([0], k=5)            # doctest: +SKIP
    >>> items[cols[0]].tolist()                       # product ids          # doctest: +SKIP
"""

from recsys_kit.cf.base import PopularityRecommender, Recommender, check_matrix, topk_rows
from recsys_kit.cf.evaluation import evaluate_recommender, sampled_recommend, test_qrels
from recsys_kit.cf.hybrid import HybridRecommender, normalize_scores, personalised_rerank
from recsys_kit.cf.interactions import build_matrix, event_weights, leave_last_out, split_frames
from recsys_kit.cf.item_knn import ItemKNN
from recsys_kit.cf.mf import ALS, BPR, ImplicitALS, implicit_available
from recsys_kit.cf.profiles import (
    PRICE_BANDS,
    behaviour_profile,
    behaviour_profiles,
    decay_factors,
    l2_normalize_rows,
    preference_profile,
    price_bands,
    text_profile,
)
from recsys_kit.cf.sequences import amazon_fixture_path, load_amazon_sequences

__all__ = [
    "ALS",
    "BPR",
    "PRICE_BANDS",
    "HybridRecommender",
    "ImplicitALS",
    "ItemKNN",
    "PopularityRecommender",
    "Recommender",
    "amazon_fixture_path",
    "behaviour_profile",
    "behaviour_profiles",
    "build_matrix",
    "check_matrix",
    "decay_factors",
    "evaluate_recommender",
    "event_weights",
    "implicit_available",
    "l2_normalize_rows",
    "leave_last_out",
    "load_amazon_sequences",
    "normalize_scores",
    "personalised_rerank",
    "preference_profile",
    "price_bands",
    "sampled_recommend",
    "split_frames",
    "test_qrels",
    "text_profile",
    "topk_rows",
]
