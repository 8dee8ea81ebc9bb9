"""Inverse-propensity scoring: unbiased estimates from position-biased, exposure-biased logs.

A click log is not a sample of what shoppers like: a product is clicked only if it was shown
(exposure) and examined (position bias, ``P(examined at rank r)``, the *propensity*). Counting
clicks therefore rewards whatever the logging system already showed on top. Dividing every click
by its propensity (IPS, Joachims, Swaminathan & Schnabel 2017, *Unbiased Learning-to-Rank with
Biased Feedback*) makes the estimate unbiased, **for the products the log showed at all**: a
product never shown has no click to reweight (propensity 0), and no estimator can recover it.

* :func:`ips_clicks` / :func:`naive_clicks` -- expected clicks per session of a new ranking,
  estimated from a search log with positions, with and without the correction.
* :func:`exposure_corrected_popularity` -- a product's click rate per expected examination
  (clicks / sum of propensities of its impressions), shrunk toward the mean, from MiniShop's
  interaction log; :class:`ExposureCorrectedPopularity` recommends by it.

Example:
    >>> log = pd.DataFrame({"session": [0, 0, 1, 1], "query_id": ["q"] * 4,
    ...                     "product_id": ["a", "b", "a", "b"], "position": [1, 2, 1, 2],
    ...                     "clicked": [1, 0, 0, 1]})
    >>> prop = np.array([1.0, 0.5])
    >>> ips_clicks(log, {"q": ["b", "a"]}, prop)  # b's click at rank 2 counts double
    1.25
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_kit import constants as C
from recsys_kit.cf.base import Recommender

__all__ = [
    "ExposureCorrectedPopularity",
    "exposure_corrected_popularity",
    "ips_clicks",
    "naive_clicks",
    "LOG_POSITION_BIAS",
]

#: Position-bias exponent of MiniShop's interaction log (``datasets/DATASHEET.md``).
LOG_POSITION_BIAS = 0.9
_LOG_COLUMNS = ("session", C.COL_QUERY_ID, C.COL_PRODUCT_ID, C.COL_POSITION, "clicked")


def _check_log(log: pd.DataFrame, propensity: np.ndarray) -> np.ndarray:
    missing = [c for c in _LOG_COLUMNS if c not in log.columns]
    if missing:
        raise ValueError(f"the log lacks columns {missing}; pass ShopperSimulator.log_sessions()")
    if len(log) == 0:
        raise ValueError("the log is empty: there is no session to estimate from")
    prop = np.asarray(propensity, dtype=float)
    if prop.ndim != 1 or len(prop) == 0 or (prop <= 0).any():
        raise ValueError("propensity must be a non-empty 1-D array of probabilities > 0")
    pos = log[C.COL_POSITION].to_numpy()
    if (pos < 1).any() or (pos > len(prop)).any():
        raise ValueError(
            f"logged positions must be in 1..{len(prop)} (the propensity curve's length); "
            f"got {int(pos.min())}..{int(pos.max())}"
        )
    return prop


def _new_ranks(log: pd.DataFrame, ranking: Mapping[Hashable, Sequence[Hashable]], k: int):
    """1-based rank of each logged product in the new ranking's top k (0 = not shown)."""
    rank_of = {(q, d): r + 1 for q, docs in ranking.items() for r, d in enumerate(list(docs)[:k])}
    return np.array(
        [rank_of.get((q, d), 0) for q, d in zip(log[C.COL_QUERY_ID], log[C.COL_PRODUCT_ID])]
    )


def _estimate(log, ranking, propensity, k, weighted: bool, clip: float | None) -> float:
    prop = _check_log(log, propensity)
    k = len(prop) if k is None else k
    if not 1 <= k <= len(prop):
        raise ValueError(f"k must be in 1..{len(prop)} (the propensity curve's length), got {k}")
    clicked = log["clicked"].to_numpy() > 0
    sub = log[clicked]
    new = _new_ranks(sub, ranking, k)
    shown = new > 0
    gain = prop[np.maximum(new, 1) - 1] * shown
    if weighted:
        logged = prop[sub[C.COL_POSITION].to_numpy() - 1]
        if clip is not None:
            logged = np.maximum(logged, clip)
        gain = gain / logged
    return float(gain.sum() / log["session"].nunique())


def ips_clicks(
    log: pd.DataFrame,
    ranking: Mapping[Hashable, Sequence[Hashable]],
    propensity: np.ndarray,
    k: int | None = None,
    clip: float | None = None,
) -> float:
    """IPS estimate of the clicks per session a new ranking would get, from a logged ranking.

    ``(1 / n_sessions) * sum over logged clicks on products in the new top k of
    propensity[new rank] / propensity[logged position]``: each click is reweighted by how likely
    its position was to be seen, then credited with how likely the new rank is to be seen.

    Args:
        log: impressions with ``session``, ``query_id``, ``product_id``, ``position``
            (1-based) and ``clicked`` (0/1), e.g. :meth:`ShopperSimulator.log_sessions`.
        ranking: ``{query_id: ranked product ids}`` of the new system.
        propensity: examination probability of ranks 1, 2, ... (``propensity[r - 1]``).
        k: depth of the new page (default: the length of ``propensity``).
        clip: lower bound on the logged propensity (less variance, some bias).

    Returns:
        Estimated clicks per session; unbiased for products the log showed.
    """
    return _estimate(log, ranking, propensity, k, weighted=True, clip=clip)


def naive_clicks(
    log: pd.DataFrame,
    ranking: Mapping[Hashable, Sequence[Hashable]],
    propensity: np.ndarray,
    k: int | None = None,
) -> float:
    """The same credit without reweighting: logged clicks count as they were observed.

    Biased toward the logging ranker: a product it showed at rank 1 collected more clicks than
    an equally good product it showed at rank 8, and that head start is credited to the new
    ranking too.
    """
    return _estimate(log, ranking, propensity, k, weighted=False, clip=None)


def exposure_corrected_popularity(
    interactions: pd.DataFrame,
    item_ids: Sequence[Hashable],
    position_bias: float = LOG_POSITION_BIAS,
    prior_strength: float = 10.0,
) -> pd.DataFrame:
    """Per product: impressions, clicks and the click rate per expected examination.

    Uses the ``view`` and ``click`` events with a known position (``position >= 1``; direct
    visits, position 0, carry no propensity and are left out). A view at position ``r`` is
    examined with probability ``r ** -position_bias``; the IPS click rate is
    ``clicks / sum(propensities)``, shrunk toward the mean rate with ``prior_strength``
    pseudo-examinations so that a product shown twice and clicked once does not top the list.

    Args:
        interactions: MiniShop's event log (``datasets.load_interactions``), e.g. the train split.
        item_ids: products to score, in the order wanted.
        position_bias: the log's position-bias exponent.
        prior_strength: pseudo-examinations at the mean rate.

    Returns:
        Frame indexed by product id: ``views`` (impressions), ``clicks``, ``examinations``
        (expected), ``raw_ctr`` (clicks / views), ``ips_ctr`` (shrunk clicks / examinations).
        Products never shown get the mean rate: the log says nothing about them.
    """
    if prior_strength < 0:
        raise ValueError(f"prior_strength must be >= 0, got {prior_strength}")
    ev = interactions[interactions[C.COL_POSITION] >= 1]
    views = ev[ev[C.COL_EVENT] == "view"]
    clicks = ev[ev[C.COL_EVENT] == "click"]
    exam = (views[C.COL_POSITION].astype(float) ** -position_bias).groupby(views[C.COL_PRODUCT_ID])
    out = pd.DataFrame(index=pd.Index(list(item_ids), name=C.COL_PRODUCT_ID))
    out["views"] = views.groupby(C.COL_PRODUCT_ID).size().reindex(out.index, fill_value=0)
    out["clicks"] = clicks.groupby(C.COL_PRODUCT_ID).size().reindex(out.index, fill_value=0)
    out["examinations"] = exam.sum().reindex(out.index, fill_value=0.0)
    total = out["examinations"].sum()
    mean = out["clicks"].sum() / total if total > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out["raw_ctr"] = np.where(out["views"] > 0, out["clicks"] / out["views"], np.nan)
    denom = out["examinations"] + prior_strength
    out["ips_ctr"] = np.where(
        denom > 0, (out["clicks"] + prior_strength * mean) / denom.where(denom > 0, 1.0), mean
    )
    return out


class ExposureCorrectedPopularity(Recommender):
    """Recommend, to everybody, the products with the highest click rate per examination.

    A popularity baseline that does not mistake exposure for appeal: the raw count of events
    mostly measures how often the old shop *showed* a product (its ranker showed the most
    reviewed products of each category), while :func:`exposure_corrected_popularity` measures how
    often shoppers clicked it *when they saw it*.

    Args:
        interactions: the event log the matrix was built from (views with positions).
        item_ids: product id of each matrix column (``item_index`` of ``build_matrix``).
        position_bias, prior_strength: see :func:`exposure_corrected_popularity`.

    Example:
        >>> from recsys_kit.datasets import load_interactions, train_test_split
        >>> train = train_test_split(load_interactions())[0]
        >>> from recsys_kit.cf import build_matrix
        >>> X, users, items = build_matrix(train)
        >>> model = ExposureCorrectedPopularity(train, items).fit(X)
        >>> model.recommend([0], k=3)[1].shape
        (1, 3)
    """

    def __init__(
        self,
        interactions: pd.DataFrame,
        item_ids: Sequence[Hashable],
        position_bias: float = LOG_POSITION_BIAS,
        prior_strength: float = 10.0,
    ) -> None:
        self.interactions = interactions
        self.item_ids = list(item_ids)
        self.position_bias = position_bias
        self.prior_strength = prior_strength
        self.table: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return (
            f"ExposureCorrectedPopularity(position_bias={self.position_bias}, "
            f"prior_strength={self.prior_strength})"
        )

    def _fit(self, matrix: sp.csr_matrix) -> None:
        if matrix.shape[1] != len(self.item_ids):
            raise ValueError(
                f"item_ids has {len(self.item_ids)} ids but the matrix {matrix.shape[1]} columns; "
                "pass the item_index returned by build_matrix"
            )
        self.table = exposure_corrected_popularity(
            self.interactions, self.item_ids, self.position_bias, self.prior_strength
        )

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = self.table["ips_ctr"].to_numpy(dtype=np.float32)
        return np.broadcast_to(scores, (len(users), len(scores)))
