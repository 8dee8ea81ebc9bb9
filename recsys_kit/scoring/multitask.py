"""Multi-task ranker: one shared layer, a relevance head and a purchase head.

Trained on ``alpha * L_rel + (1 - alpha) * L_buy``; :meth:`MultiTaskRanker.score` mixes the
two heads' per-query z-scores. Its trade-off is traced by
:func:`recsys_kit.scoring.comparison.tradeoff_curve`.

Example:
    >>> m = MultiTaskRanker(5).fit(x, grades, buy, groups, alpha=0.7)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from recsys_kit import constants as C
from recsys_kit.device import get_device
from recsys_kit.progress import progress
from recsys_kit.scoring.features import FEATURES, feature_matrix
from recsys_kit.scoring.rankers import group_codes, standardize
from recsys_kit.threads import cpu_threads_for

__all__ = ["MultiTaskRanker"]


def _zscore_by_group(s: np.ndarray, codes: np.ndarray) -> np.ndarray:
    df = pd.DataFrame({"s": s, "g": codes})
    grp = df.groupby("g")["s"]
    std = grp.transform("std", ddof=0).to_numpy()
    z = (s - grp.transform("mean").to_numpy()) / np.where(std > 1e-12, std, 1.0)
    return z


class MultiTaskRanker(nn.Module):
    """Shared layer over pair features -> relevance head and purchase head.

    Trained on ``alpha * L_rel + (1 - alpha) * L_buy``, both binary cross-entropy with soft
    targets: ``grade / max_grade`` for relevance, the purchase rate for buying. Ranking score
    (:meth:`score`): ``mix * z(rel) + (1 - mix) * z(buy)``, each head's logit z-scored within
    its query so the two are on one scale; ``mix`` defaults to the training ``alpha``.

    Args:
        n_features: input width.
        hidden: width of the shared layer.
        seed: seed of the initial weights.

    Example:
        >>> m = MultiTaskRanker(5).fit(x, grades, buy, groups, alpha=0.7)   # doctest: +SKIP
        >>> m.score(x, groups)                                             # doctest: +SKIP
    """

    def __init__(self, n_features: int, hidden: int = 16, seed: int = C.SEED) -> None:
        super().__init__()
        if n_features < 1 or hidden < 1:
            raise ValueError(f"need n_features >= 1 and hidden >= 1, got {n_features}, {hidden}")
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.shared = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.relevance_head = nn.Linear(hidden, 1)
        self.purchase_head = nn.Linear(hidden, 1)
        torch.random.set_rng_state(gen_state)  # do not disturb the caller's random stream
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.alpha = 0.5
        self.feature_names: list[str] | None = None
        self.history: list[dict[str, float]] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw features -> (relevance logit, purchase logit), each (n,)."""
        h = self.shared((x - self.mean) / self.std)
        return self.relevance_head(h).squeeze(-1), self.purchase_head(h).squeeze(-1)

    def _x(self, features: pd.DataFrame | np.ndarray) -> torch.Tensor:
        names = self.feature_names if isinstance(features, pd.DataFrame) else None
        x = feature_matrix(features, names)
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"features have {x.shape[1]} columns, the model {self.mean.shape[0]}")
        return torch.tensor(x, dtype=torch.float32, device=self.mean.device)

    def fit(
        self,
        features: pd.DataFrame | np.ndarray,
        grades: Sequence[float] | np.ndarray,
        buy: Sequence[float] | np.ndarray,
        alpha: float = 0.5,
        epochs: int = 300,
        lr: float = 0.01,
        max_grade: float | None = None,
        device: str | torch.device | None = None,
    ) -> MultiTaskRanker:
        """Train on ``alpha * L_rel + (1 - alpha) * L_buy`` (full batch, Adam).

        Args:
            features: (n, f) pair features.
            grades: (n,) relevance grades (0 = irrelevant).
            buy: (n,) purchase targets in [0, 1] (:func:`purchase_rate`).
            alpha: weight of the relevance loss, in [0, 1].
            epochs, lr: Adam steps and learning rate.
            max_grade: grade mapped to target 1 (default: the largest grade seen).
            device: torch device (default :func:`recsys_kit.device.get_device`).

        Returns:
            self, trained.
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if isinstance(features, pd.DataFrame):
            self.feature_names = [c for c in FEATURES if c in features.columns]
        x = feature_matrix(features, self.feature_names)
        g = np.asarray(grades, dtype=np.float64)
        p = np.asarray(buy, dtype=np.float64)
        if g.shape != (len(x),) or p.shape != (len(x),):
            raise ValueError(f"grades {g.shape} and buy {p.shape} must both be ({len(x)},)")
        if (p < 0).any() or (p > 1).any():
            raise ValueError("buy targets must lie in [0, 1] (rates); see purchase_rate()")
        top = max_grade if max_grade is not None else (g.max() if g.max() > 0 else 1.0)
        dev = get_device(device)
        self.to(dev)
        mean, std = standardize(x)
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        xt = torch.tensor(x, dtype=torch.float32, device=dev)
        rel_t = torch.tensor(np.clip(g / top, 0, 1), dtype=torch.float32, device=dev)
        buy_t = torch.tensor(p, dtype=torch.float32, device=dev)
        # Start each head at the logit of its target's mean: purchase rates average ~0.04, far
        # from sigmoid(0) = 0.5, and a few hundred Adam steps would otherwise be spent (and, at
        # the default lr, not enough) just on moving the bias there.
        with torch.no_grad():
            for head, target in ((self.relevance_head, rel_t), (self.purchase_head, buy_t)):
                rate = float(target.mean().clamp(1e-4, 1 - 1e-4))
                head.bias.fill_(float(np.log(rate / (1 - rate))))
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        bce = nn.functional.binary_cross_entropy_with_logits
        self.alpha = float(alpha)
        self.history = []
        self.train()
        with cpu_threads_for(dev, x.shape[0] * self.relevance_head.in_features):
            for _ in progress(range(epochs), "multi-task epochs"):
                opt.zero_grad()
                rel, purchase = self(xt)
                l_rel, l_buy = bce(rel, rel_t), bce(purchase, buy_t)
                (alpha * l_rel + (1 - alpha) * l_buy).backward()
                opt.step()
                self.history.append({"rel": float(l_rel.detach()), "buy": float(l_buy.detach())})
        self.eval()
        return self

    @torch.no_grad()
    def predict(self, features: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        """Head probabilities: ``{"relevance": (n,), "purchase": (n,)}``."""
        rel, purchase = self(self._x(features))
        return {
            "relevance": torch.sigmoid(rel).cpu().double().numpy(),
            "purchase": torch.sigmoid(purchase).cpu().double().numpy(),
        }

    @torch.no_grad()
    def score(
        self,
        features: pd.DataFrame | np.ndarray,
        groups: Sequence[Hashable] | np.ndarray | None = None,
        mix: float | None = None,
    ) -> np.ndarray:
        """Ranking score ``mix * z(rel) + (1 - mix) * z(buy)`` (z within each group).

        Args:
            features: (n, f) pair features.
            groups: (n,) query ids (None: one group).
            mix: head mix in [0, 1]; default the training ``alpha``.

        Returns:
            (n,) float64 scores.
        """
        m = self.alpha if mix is None else float(mix)
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"mix must be in [0, 1], got {m}")
        rel, purchase = self(self._x(features))
        n = rel.shape[0]
        codes = np.zeros(n, dtype=np.int64) if groups is None else group_codes(groups, n)
        z_rel = _zscore_by_group(rel.cpu().double().numpy(), codes)
        z_buy = _zscore_by_group(purchase.cpu().double().numpy(), codes)
        return m * z_rel + (1.0 - m) * z_buy
