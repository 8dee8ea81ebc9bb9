"""Hybrid recommendation: collaborative filtering + content, and personalised search.

CF knows *who bought what* but nothing about a product nobody touched yet; content (text and
image embeddings) knows what every product *is*. :class:`HybridRecommender` blends the two:

    score(u, i) = alpha * z(cf(u, i)) + (1 - alpha) * z(content(u, i))

``content(u, i)`` is the cosine between item ``i`` and the user's *behaviour profile* (the
confidence-weighted mean of the vectors of the items they interacted with; images count where a
product has one), and ``z`` standardises each user's scores over the items, so the two parts
are on the same scale whatever the CF model. **Cold-start products** (no interaction in the
training matrix) have no meaningful CF score: their CF part is set to the user's average (0
after ``z``), so their content similarity alone decides where they land.

:func:`personalised_rerank` uses the same idea for search: it mixes a query's retrieval scores
with the similarity of each result to the shopper's profile.

Example:
    >>> import scipy.sparse as sp
    >>> from recsys_kit.cf.base import PopularityRecommender
    >>> X = sp.csr_matrix([[1.0, 0, 0], [1.0, 1.0, 0]])        # item 2 is brand new
    >>> vecs = np.array([[1.0, 0], [0, 1.0], [0.9, 0.1]], dtype=np.float32)
    >>> hyb = HybridRecommender(PopularityRecommender(), vecs, alpha=0.5).fit(X)
    >>> hyb.recommend([0], k=2)[1].tolist()    # the new item looks like what user 0 bought
    [[2, 1]]
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_kit.cf.base import Recommender
from recsys_kit.cf.profiles import l2_normalize_rows

__all__ = ["NORMALIZATIONS", "normalize_scores", "HybridRecommender", "personalised_rerank"]

NORMALIZATIONS = ("zscore", "minmax")


def normalize_scores(
    scores: np.ndarray, mask: np.ndarray | None = None, method: str = "zscore"
) -> np.ndarray:
    """Standardise each row of a score matrix, using only the columns in ``mask``.

    Args:
        scores: (n_users, n_items) scores.
        mask: (n_items,) bool, the columns whose statistics define the scale (default all).
        method: ``"zscore"`` (mean 0, std 1) or ``"minmax"`` (to [0, 1]).

    Returns:
        float32 array of the same shape; a constant row becomes 0.

    Example:
        >>> normalize_scores(np.array([[1.0, 2.0, 3.0]]), method="minmax").tolist()
        [[0.0, 0.5, 1.0]]
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"method must be one of {NORMALIZATIONS}, got {method!r}")
    s = np.asarray(scores, dtype=np.float64)
    ref = s if mask is None else s[:, mask]
    if ref.shape[1] == 0:
        return np.zeros_like(s, dtype=np.float32)
    if method == "zscore":
        center, scale = ref.mean(axis=1, keepdims=True), ref.std(axis=1, keepdims=True)
    else:
        center = ref.min(axis=1, keepdims=True)
        scale = ref.max(axis=1, keepdims=True) - center
    out = np.divide(s - center, scale, out=np.zeros_like(s), where=scale > 1e-12)
    return out.astype(np.float32)


def _check_vectors(vectors: Any, n: int | None, name: str) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_items, dim), got shape {v.shape}")
    if n is not None and len(v) != n:
        raise ValueError(
            f"{name} has {len(v)} rows but the matrix has {n} item columns; build the matrix "
            "with build_matrix(..., items=<the ids of these rows>) so rows and columns align"
        )
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or inf; use zero rows for missing vectors")
    return v


class HybridRecommender(Recommender):
    """Blend a CF model with content similarity to the user's behaviour profile.

    Args:
        cf_model: any :class:`~recsys_kit.cf.base.Recommender` (ALS, BPR, ItemKNN, ...).
        content_vectors: (n_items, dim) text embeddings, row ``j`` = matrix column ``j``.
        alpha: weight of CF in [0, 1]; 1 = pure CF (cold items get the average), 0 = pure
            content.
        image_vectors: optional (n_items, dim_img) image embeddings; an all-zero row means
            "no picture" and that item is compared by text only.
        normalize: per-user score scaling before blending: ``"zscore"`` or ``"minmax"``.
        fit_cf: fit ``cf_model`` in :meth:`fit` (False: it is already fitted on the matrix).

    Attributes:
        user_profiles: (n_users, dim) unit behaviour profiles (text space).
        user_image_profiles: same in image space (None without images).
        cold_items: bool (n_items,), the columns with no interaction in training.
    """

    def __init__(
        self,
        cf_model: Recommender,
        content_vectors: Any,
        alpha: float = 0.5,
        image_vectors: Any | None = None,
        normalize: str = "zscore",
        fit_cf: bool = True,
    ) -> None:
        if not isinstance(cf_model, Recommender):
            raise TypeError(
                f"cf_model must be a recsys_kit.cf Recommender, got {type(cf_model).__name__}"
            )
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.cf_model, self.alpha, self.normalize, self.fit_cf = cf_model, alpha, normalize, fit_cf
        self.content_vectors = l2_normalize_rows(_check_vectors(content_vectors, None, "content"))
        self.image_vectors = (
            None
            if image_vectors is None
            else l2_normalize_rows(_check_vectors(image_vectors, None, "image_vectors"))
        )
        self.user_profiles: np.ndarray | None = None
        self.user_image_profiles: np.ndarray | None = None
        self.cold_items: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"HybridRecommender({self.cf_model!r}, alpha={self.alpha}, "
            f"normalize={self.normalize!r})"
        )

    def _fit(self, matrix: sp.csr_matrix) -> None:
        n_items = matrix.shape[1]
        _check_vectors(self.content_vectors, n_items, "content_vectors")
        if self.image_vectors is not None:
            _check_vectors(self.image_vectors, n_items, "image_vectors")
        if self.fit_cf:
            self.cf_model.fit(matrix)
        elif self.cf_model.train_matrix is None or self.cf_model.train_matrix.shape != matrix.shape:
            raise ValueError(
                "fit_cf=False needs a cf_model already fitted on a matrix of this shape"
            )
        # Profiles: each user's confidence-weighted mean of the vectors of their items.
        self.user_profiles = l2_normalize_rows(matrix @ self.content_vectors)
        if self.image_vectors is not None:
            self.user_image_profiles = l2_normalize_rows(matrix @ self.image_vectors)
        self.cold_items = np.diff(matrix.tocsc().indptr) == 0

    def content_scores(
        self,
        user_ids: Sequence[int] | np.ndarray,
        item_vectors: Any | None = None,
        item_image_vectors: Any | None = None,
    ) -> np.ndarray:
        """Cosine between users' profiles and items (text, averaged with image where present).

        Args:
            user_ids: matrix rows.
            item_vectors: vectors of other items (e.g. products added after training); default
                the fitted ``content_vectors``.
            item_image_vectors: their image vectors (zero row = no image), optional.

        Returns:
            float32 (n_users, n_items) in [-1, 1].
        """
        users = self._user_rows(user_ids)
        if item_vectors is None:
            text, image = self.content_vectors, self.image_vectors
        else:
            text = l2_normalize_rows(_check_vectors(item_vectors, None, "item_vectors"))
            image = (
                None
                if item_image_vectors is None
                else l2_normalize_rows(_check_vectors(item_image_vectors, len(text), "images"))
            )
        sim = self.user_profiles[users] @ text.T
        if image is not None and self.user_image_profiles is not None:
            has_image = np.linalg.norm(image, axis=1) > 0
            user_has = np.linalg.norm(self.user_image_profiles[users], axis=1) > 0
            both = user_has[:, None] & has_image[None, :]
            img_sim = self.user_image_profiles[users] @ image.T
            sim = np.where(both, 0.5 * (sim + img_sim), sim)
        return sim.astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        warm = ~self.cold_items
        cf = normalize_scores(self.cf_model.score(users), warm, self.normalize)
        if self.normalize == "zscore":
            cf[:, self.cold_items] = 0.0  # the warm items' mean: neutral for cold items
        else:
            cf[:, self.cold_items] = cf[:, warm].mean(axis=1, keepdims=True) if warm.any() else 0
        content = normalize_scores(self.content_scores(users), None, self.normalize)
        return self.alpha * cf + (1.0 - self.alpha) * content

    def score_new_items(
        self,
        user_ids: Sequence[int] | np.ndarray,
        item_vectors: Any,
        item_image_vectors: Any | None = None,
    ) -> np.ndarray:
        """Scores of products that are not in the matrix at all (added after training).

        They have no CF signal, so this is the content part alone, z-scored with the
        statistics of the fitted catalogue so the numbers compare with :meth:`score`'s content
        part.

        Returns:
            float32 (n_users, n_new_items), finite.
        """
        users = self._user_rows(user_ids)
        known = self.content_scores(users).astype(np.float64)
        new = self.content_scores(users, item_vectors, item_image_vectors).astype(np.float64)
        mean, std = known.mean(axis=1, keepdims=True), known.std(axis=1, keepdims=True)
        out = np.divide(new - mean, std, out=np.zeros_like(new), where=std > 1e-12)
        return ((1.0 - self.alpha) * out).astype(np.float32)


def personalised_rerank(
    candidates_run: Mapping[Hashable, Mapping[Hashable, float]],
    user_profile_vec: Any,
    item_vectors: Any,
    beta: float = 0.3,
    item_ids: Sequence[Hashable] | None = None,
) -> dict[Hashable, dict[Hashable, float]]:
    """Re-rank search results towards a shopper's taste.

    For each query the retrieval scores are min-max scaled to [0, 1] and mixed with the cosine
    between each result and the user's profile:
    ``new = (1 - beta) * minmax(search) + beta * cos(profile, item)``.

    Args:
        candidates_run: ``{query_id: {product_id: score}}`` from search (BM25, dense, hybrid).
        user_profile_vec: the shopper's (dim,) profile (:func:`behaviour_profile` or
            :func:`text_profile`), or ``{query_id: profile}`` when queries come from
            different users.
        item_vectors: (n_products, dim) vectors in the profile's space.
        beta: personalisation weight in [0, 1]; 0 keeps the search order.
        item_ids: product id of each row of ``item_vectors``; default: ids are row numbers.

    Returns:
        A new run ``{query_id: {product_id: new score}}`` (evaluate it with
        :func:`recsys_kit.metrics.evaluate`).

    Example:
        >>> run = {"q": {0: 2.0, 1: 1.9}}
        >>> vecs = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> out = personalised_rerank(run, np.array([0.0, 1.0]), vecs, beta=0.6)
        >>> max(out["q"], key=out["q"].get)
        1
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if not isinstance(candidates_run, Mapping):
        raise TypeError("candidates_run must be a run dict {query_id: {product_id: score}}")
    vectors = l2_normalize_rows(_check_vectors(item_vectors, None, "item_vectors"))
    index = pd.Index(range(len(vectors)) if item_ids is None else list(item_ids))
    if len(index) != len(vectors):
        raise ValueError(f"item_ids has {len(index)} ids for {len(vectors)} item vectors")
    per_query = isinstance(user_profile_vec, Mapping)
    out: dict[Hashable, dict[Hashable, float]] = {}
    for qid, docs in candidates_run.items():
        if not docs:
            out[qid] = {}
            continue
        if per_query:
            if qid not in user_profile_vec:
                raise KeyError(f"no profile for query {qid!r} in user_profile_vec")
            profile = user_profile_vec[qid]
        else:
            profile = user_profile_vec
        profile = l2_normalize_rows(np.asarray(profile, dtype=np.float32).reshape(-1))
        if profile.shape[0] != vectors.shape[1]:
            raise ValueError(
                f"profile has dim {profile.shape[0]} but item vectors have dim {vectors.shape[1]}"
                "; build both with the same encoder"
            )
        ids = list(docs.keys())
        rows = index.get_indexer(ids)
        if (rows < 0).any():
            missing = ids[int(np.flatnonzero(rows < 0)[0])]
            raise KeyError(
                f"product {missing!r} of query {qid!r} has no vector; pass item_ids for the rows"
            )
        search = normalize_scores(np.array([list(docs.values())], dtype=np.float64), None, "minmax")
        if len(ids) == 1:
            search[:] = 1.0
        personal = vectors[rows] @ profile
        new = (1.0 - beta) * search[0] + beta * personal
        out[qid] = dict(zip(ids, new.astype(float).tolist(), strict=True))
    return out
