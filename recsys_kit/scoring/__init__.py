"""Multi-task scoring: rank (query, product) pairs by a learned score, not a "loss" to minimise.

The training material proposes, for a query embedding ``u`` and product embeddings ``v_i``::

    L = sum_i ( ||u - v_i||^2 + w_s * s_i + w_r * r_i )

with ``s_i`` the attribute match and ``r_i`` the rating. Read as an objective it is backwards:
minimising it pushes *down* the attribute match and the rating (a well-rated, well-matching
product gets a larger "loss"), and summing over all products mixes every product into one number
instead of ordering them. What the idea really wants is a **score** to rank by::

    score_i = -||u - v_i||^2 + w_s * s_i + w_r * r_i + ...

with the weights *learned* from relevance labels (:func:`fit_linear_ranker`, pointwise or
pairwise), and a second objective (purchases) added as a second head of a small multi-task
network (:class:`MultiTaskRanker`) whose trade-off is traced by :func:`tradeoff_curve`.

Pair features (:func:`pair_features`, one row per (query, product) pair, all vectorised):

* ``distance``: ``||u - v||^2``; for unit vectors it equals ``2 - 2 cos(u, v)``, so it ranks
  exactly like cosine similarity (reversed).
* ``attr_match``: fraction of the query's attribute words (colour, material, gender, style,
  season, category, brand; English or Chinese, from :func:`build_lexicon`) that the product has.
* ``rating``: catalog rating mapped from [1, 5] to [0, 1].
* ``price_fit``: 1 inside the price range parsed from the query ("under 50", "50美元以下"),
  decaying exponentially outside it; 1 (neutral) when the query states no price.
* ``popularity``: ``log(1 + review_count)``, divided by the catalog maximum.

The package, one module per concern (a notebook imports the names from here):

* :mod:`~recsys_kit.scoring.lexicon` -- the bilingual attribute lexicon, query parsing, prices.
* :mod:`~recsys_kit.scoring.features` -- :func:`pair_features` and :func:`quality_prior`.
* :mod:`~recsys_kit.scoring.rankers` -- :func:`hand_weighted_score`, :func:`fit_linear_ranker`.
* :mod:`~recsys_kit.scoring.labels` -- grades and purchase labels of pairs.
* :mod:`~recsys_kit.scoring.multitask` -- :class:`MultiTaskRanker`.
* :mod:`~recsys_kit.scoring.candidates` -- candidate pools (the query split,
  :func:`train_test_queries`, lives in :mod:`recsys_kit.datasets.splits`).
* :mod:`~recsys_kit.scoring.comparison` -- :func:`compare_scorers`, :func:`tradeoff_curve`.

Example:
    >>> import numpy as np, pandas as pd
    >>> feats = pd.DataFrame({"distance": [0.2, 0.2], "attr_match": [1.0, 0.0],
    ...                       "rating": [0.5, 0.5], "price_fit": [1.0, 1.0],
    ...                       "popularity": [0.3, 0.3]})
    >>> hand_weighted_score(feats, {"distance": -1.0, "attr_match": 0.5}).round(2).tolist()
    [0.3, -0.2]
"""

from recsys_kit.datasets.splits import train_test_queries
from recsys_kit.runs import scores_to_run
from recsys_kit.scoring.candidates import candidate_pairs
from recsys_kit.scoring.comparison import DEFAULT_METRICS, compare_scorers, tradeoff_curve
from recsys_kit.scoring.features import (
    FEATURES,
    attribute_match,
    pair_features,
    popularity_score,
    quality_prior,
    rating_score,
)
from recsys_kit.scoring.labels import attach_grades, purchase_qrels, purchase_rate
from recsys_kit.scoring.lexicon import (
    EN_VARIANTS,
    MATCH_COLUMNS,
    NEUTRAL_SATISFIES,
    NEUTRAL_VALUES,
    ZH_TERMS,
    PriceRange,
    build_lexicon,
    parse_price,
    price_fit,
    query_attributes,
)
from recsys_kit.scoring.multitask import MultiTaskRanker
from recsys_kit.scoring.rankers import (
    DEFAULT_HAND_WEIGHTS,
    LinearRanker,
    fit_linear_ranker,
    hand_weighted_score,
    material_loss_terms,
    ranking_pairs,
)
from recsys_kit.threads import cpu_threads_for  # its old home; fusion used to import it here

__all__ = [
    "FEATURES",
    "MATCH_COLUMNS",
    "NEUTRAL_VALUES",
    "NEUTRAL_SATISFIES",
    "ZH_TERMS",
    "EN_VARIANTS",
    "DEFAULT_HAND_WEIGHTS",
    "DEFAULT_METRICS",
    "PriceRange",
    "LinearRanker",
    "MultiTaskRanker",
    "build_lexicon",
    "query_attributes",
    "parse_price",
    "price_fit",
    "attribute_match",
    "pair_features",
    "rating_score",
    "popularity_score",
    "quality_prior",
    "material_loss_terms",
    "hand_weighted_score",
    "ranking_pairs",
    "fit_linear_ranker",
    "purchase_rate",
    "purchase_qrels",
    "train_test_queries",
    "candidate_pairs",
    "attach_grades",
    "scores_to_run",
    "compare_scorers",
    "tradeoff_curve",
    "cpu_threads_for",
]
