"""Rankers over pair features: the material's hand-weighted score, fixed, and a learned one.

:func:`hand_weighted_score` is a weighted sum of features (larger = better);
:func:`fit_linear_ranker` learns the weights from graded labels (pointwise or pairwise, with
:func:`ranking_pairs`), returning a :class:`LinearRanker`.

Example:
    >>> ranking_pairs(np.array([2, 0, 1]), ["q", "q", "q"])
    (array([0, 0, 2]), array([1, 2, 1]))
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from recsys_kit import constants as C
from recsys_kit.device import get_device
from recsys_kit.progress import progress
from recsys_kit.scoring.features import FEATURES, feature_matrix
from recsys_kit.threads import cpu_threads_for

__all__ = [
    "DEFAULT_HAND_WEIGHTS",
    "LinearRanker",
    "fit_linear_ranker",
    "group_codes",
    "hand_weighted_score",
    "material_loss_terms",
    "ranking_pairs",
    "standardize",
]


#: The material's weights as a score: distance counts against, match and rating for.
DEFAULT_HAND_WEIGHTS: dict[str, float] = {"distance": -1.0, "attr_match": 0.5, "rating": 0.2}


def material_loss_terms(features: pd.DataFrame, w_s: float, w_r: float) -> np.ndarray:
    """The material's per-product term ``||u - v_i||^2 + w_s s_i + w_r r_i`` (for teaching).

    Ranking by it ascending (smallest "loss" first) prefers *worse* matches and ratings at
    equal distance; :func:`hand_weighted_score` is the fix.

    Example:
        >>> f = pd.DataFrame({"distance": [0.5, 0.5], "attr_match": [0.0, 0.0],
        ...                   "rating": [1.0, 0.2]})
        >>> int(material_loss_terms(f, w_s=0.5, w_r=0.5).argmin())  # the badly rated product
        1
    """
    x = feature_matrix(features, ["distance", "attr_match", "rating"])
    return x[:, 0] + w_s * x[:, 1] + w_r * x[:, 2]


def hand_weighted_score(
    features: pd.DataFrame, weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Score = sum of ``weights[f] * features[f]`` (larger = better).

    Args:
        features: from :func:`pair_features`.
        weights: feature -> weight; default :data:`DEFAULT_HAND_WEIGHTS`
            (``-distance + 0.5 * attr_match + 0.2 * rating``). Give ``distance`` a negative
            weight: a larger distance means a worse match.

    Returns:
        (n_pairs,) float64 scores.

    Example:
        >>> hand_weighted_score(pd.DataFrame({"distance": [0.1, 0.4]})).tolist()
        [-0.1, -0.4]
    """
    w = dict(DEFAULT_HAND_WEIGHTS if weights is None else weights)
    names = [n for n in w if n in features.columns]
    unknown = [n for n in w if n not in features.columns]
    if unknown and weights is not None:
        raise KeyError(f"weights name feature(s) {unknown} missing from features")
    x = feature_matrix(features, names)
    return x @ np.array([w[n] for n in names], dtype=np.float64)


def group_codes(groups: Sequence[Hashable] | np.ndarray, n: int) -> np.ndarray:
    """Integer code per row of its group (query) id, checking one id per row."""
    g = pd.Series(np.asarray(groups, dtype=object))
    if len(g) != n:
        raise ValueError(f"got {len(g)} group ids for {n} rows; pass one query id per row")
    return pd.factorize(g)[0]


def ranking_pairs(
    labels: np.ndarray,
    groups: Sequence[Hashable] | np.ndarray,
    max_pairs_per_group: int | None = None,
    seed: int = C.SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) within the same group with ``labels[i] > labels[j]``.

    Args:
        labels: (n,) graded labels.
        groups: (n,) group (query) ids.
        max_pairs_per_group: sample at most this many pairs per group (None = all).
        seed: sampling seed.

    Returns:
        ``(better, worse)`` int64 arrays of equal length.

    Example:
        >>> ranking_pairs(np.array([2, 0, 1]), ["q", "q", "q"])
        (array([0, 0, 2]), array([1, 2, 1]))
    """
    y = np.asarray(labels, dtype=np.float64)
    codes = group_codes(groups, len(y))
    rng = np.random.default_rng(seed)
    better, worse = [], []
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for rows in np.split(order, bounds):
        d = y[rows][:, None] - y[rows][None, :]
        bi, wi = np.nonzero(d > 0)
        if max_pairs_per_group is not None and len(bi) > max_pairs_per_group:
            keep = np.sort(rng.choice(len(bi), max_pairs_per_group, replace=False))
            bi, wi = bi[keep], wi[keep]
        better.append(rows[bi])
        worse.append(rows[wi])
    if not better:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(better).astype(np.int64), np.concatenate(worse).astype(np.int64)


@dataclass
class LinearRanker:
    """A fitted linear score ``x @ w + b``; ``weights`` are in raw feature units.

    Attributes:
        feature_names: feature order.
        weights: feature -> weight on the raw feature (score units per feature unit).
        bias: intercept (only meaningful for the pointwise loss).
        standardized_weights: feature -> weight per standard deviation of the feature,
            comparable across features (read these to compare importance).
        loss: ``"pointwise"`` or ``"pairwise"``.
        history: training loss per epoch.
    """

    feature_names: list[str]
    weights: dict[str, float]
    bias: float
    standardized_weights: dict[str, float]
    loss: str
    history: list[float] = field(default_factory=list, repr=False)

    def score(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Scores of feature rows (a frame is read by ``feature_names``)."""
        x = feature_matrix(
            features, self.feature_names if isinstance(features, pd.DataFrame) else None
        )
        if x.shape[1] != len(self.feature_names):
            raise ValueError(f"features have {x.shape[1]} columns, the model {len(self.weights)}")
        return x @ np.array([self.weights[n] for n in self.feature_names]) + self.bias


def standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 for a constant column)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)  # constant feature: leave it unscaled


def fit_linear_ranker(
    features: pd.DataFrame | np.ndarray,
    labels: Sequence[float] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray,
    loss: Literal["pointwise", "pairwise"] = "pairwise",
    epochs: int = 300,
    lr: float = 0.05,
    seed: int = C.SEED,
    feature_names: Sequence[str] | None = None,
    weight_decay: float = 1e-4,
    max_pairs_per_group: int | None = 2000,
    device: str | torch.device | None = None,
) -> LinearRanker:
    """Learn the weights of a linear score from graded labels.

    * ``"pointwise"``: mean squared error between the score and ``label / max(label)``.
    * ``"pairwise"``: RankNet, ``log(1 + exp(-(s_i - s_j)))`` over pairs of the same query
      with ``label_i > label_j`` (only the order within a query matters).

    Features are standardised for training (full-batch Adam) and the weights mapped back.

    Args:
        features: (n, f) frame (columns :data:`FEATURES` or ``feature_names``) or array.
        labels: (n,) grades, e.g. ESCI 3/2/1/0.
        groups: (n,) query id of each row.
        loss: ``"pointwise"`` or ``"pairwise"``.
        epochs, lr: full-batch Adam steps and learning rate.
        seed: seed of the pair sampling and of torch.
        feature_names: column names (default: :data:`FEATURES` present in the frame).
        weight_decay: L2 penalty (keeps pairwise weights finite on separable data).
        max_pairs_per_group: cap on sampled pairs per query (pairwise).
        device: torch device (default :func:`recsys_kit.device.get_device`).

    Returns:
        :class:`LinearRanker`.

    Example:
        >>> rng = np.random.default_rng(0); x = rng.normal(size=(200, 2))
        >>> y = (x @ [2.0, -1.0] > 0).astype(int); g = np.repeat(np.arange(20), 10)
        >>> m = fit_linear_ranker(x, y, g, epochs=200)
        >>> m.weights["x0"] > 0 > m.weights["x1"]
        True
    """
    if loss not in ("pointwise", "pairwise"):
        raise ValueError(f"loss must be 'pointwise' or 'pairwise', got {loss!r}")
    if epochs < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1 and lr > 0, got epochs={epochs}, lr={lr}")
    x = feature_matrix(features, feature_names)
    if feature_names is None:
        feature_names = (
            [c for c in FEATURES if c in features.columns]
            if isinstance(features, pd.DataFrame)
            else [f"x{i}" for i in range(x.shape[1])]
        )
    y = np.asarray(labels, dtype=np.float64)
    if y.shape != (len(x),):
        raise ValueError(f"labels must be (n,) = ({len(x)},), got {y.shape}")
    mean, std = standardize(x)
    dev = get_device(device)
    torch.manual_seed(seed)
    w = torch.zeros(x.shape[1], device=dev, requires_grad=True)
    b = torch.zeros((), device=dev, requires_grad=True)
    if loss == "pairwise":
        objective, size = _pairwise_objective(x, y, std, groups, max_pairs_per_group, seed, dev)
    else:
        objective, size = _pointwise_objective(x, y, mean, std, groups, dev)
    history = _train(objective, w, b, size, epochs, lr, weight_decay, dev)
    w_std = w.detach().cpu().double().numpy()
    w_raw = w_std / std
    bias = float(b.detach().cpu()) - float((w_raw * mean).sum())
    names = list(feature_names)
    return LinearRanker(
        feature_names=names,
        weights=dict(zip(names, w_raw.tolist(), strict=True)),
        bias=bias if loss == "pointwise" else 0.0,
        standardized_weights=dict(zip(names, w_std.tolist(), strict=True)),
        loss=loss,
        history=history,
    )


def _pairwise_objective(
    x: np.ndarray,
    y: np.ndarray,
    std: np.ndarray,
    groups: Sequence[Hashable] | np.ndarray,
    max_pairs_per_group: int | None,
    seed: int,
    dev: torch.device,
) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], int]:
    """Pairwise logistic loss over pairs of a query with different labels (RankNet)."""
    bi, wi = ranking_pairs(y, groups, max_pairs_per_group, seed)
    if len(bi) == 0:
        raise ValueError(
            "no pair of rows in the same group has different labels; pairwise training "
            "needs queries with at least two grades (or use loss='pointwise')"
        )
    # linear score: s_i - s_j = (x_i - x_j) @ w, so the pair differences are fixed inputs
    diff = torch.as_tensor(((x[bi] - x[wi]) / std).astype(np.float32), device=dev)
    return (lambda w, b: nn.functional.softplus(-(diff @ w)).mean()), diff.numel()


def _pointwise_objective(
    x: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    groups: Sequence[Hashable] | np.ndarray,
    dev: torch.device,
) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], int]:
    """Squared error between the score and the label scaled to [0, 1]."""
    group_codes(groups, len(y))  # validate length
    top = y.max() if y.max() > 0 else 1.0
    xt = torch.as_tensor((x - mean) / std, dtype=torch.float32, device=dev)
    yt = torch.as_tensor(y / top, dtype=torch.float32, device=dev)
    return (lambda w, b: nn.functional.mse_loss(xt @ w + b, yt)), x.size


def _train(
    objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    w: torch.Tensor,
    b: torch.Tensor,
    size: int,
    epochs: int,
    lr: float,
    weight_decay: float,
    dev: torch.device,
) -> list[float]:
    """Full-batch Adam on ``objective(w, b) + weight_decay * |w|^2``; the loss per epoch."""
    opt = torch.optim.Adam([w, b], lr=lr)
    history: list[float] = []
    with cpu_threads_for(dev, size):
        for _ in progress(range(epochs), "ranker epochs"):
            opt.zero_grad()
            obj = objective(w, b)
            (obj + weight_decay * (w * w).sum()).backward()
            opt.step()
            history.append(float(obj.detach()))
    return history
